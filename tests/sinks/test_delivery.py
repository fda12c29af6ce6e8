"""The delivery helpers both sinks share: Retry (with its breaker), Spool, BoundedCaller."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from span_tree.sinks._delivery import (
    DONE,
    RETRY,
    STALE_CLAIM_SECONDS,
    BoundedCaller,
    Outcome,
    Retry,
    Spool,
    SpoolFull,
    give_up,
)


def make_retry(**overrides: float) -> tuple[Retry, list[float]]:
    """A Retry that records its waits instead of sleeping."""
    waits: list[float] = []
    settings = {"attempts": 3, "backoff": 0.1, "down_delay": 1.0, "max_down_delay": 4.0}
    settings.update(overrides)
    retry = Retry(
        attempts=int(settings["attempts"]),
        backoff=settings["backoff"],
        down_delay=settings["down_delay"],
        max_down_delay=settings["max_down_delay"],
        wait=waits.append,
    )
    return retry, waits


def test_retry_doubles_its_backoff_then_opens_the_breaker() -> None:
    """Three failed tries wait 0.1 then 0.2 s; the breaker then stays open for down_delay."""
    retry, waits = make_retry()
    outcomes = iter([RETRY, RETRY, RETRY])
    assert not retry.run(lambda deadline: next(outcomes))
    assert ([0.1, 0.2], 2) == (waits, retry.retries)
    assert retry.is_open()
    assert 0.9 < retry.open_until - time.monotonic() <= 1.0


def test_an_open_breaker_tries_nothing_and_doubles_up_to_its_cap() -> None:
    """While open, run() makes no attempt; each further failed run doubles the pause, capped."""
    retry, _ = make_retry(attempts=1)
    tried: list[float | None] = []

    def attempt(deadline: float | None) -> Outcome:
        tried.append(deadline)
        return RETRY

    pauses = []
    for _ in range(4):
        assert not retry.run(attempt)
        assert not retry.run(attempt)  # open: not tried
        pauses.append(round(retry.open_until - time.monotonic()))
        retry.open_until = 0.0  # the pause is over
    assert ([1, 2, 4, 4], 4) == (pauses, len(tried))


def test_success_closes_the_breaker_and_resets_the_pause() -> None:
    """A delivery after failures closes the breaker; the next failure pauses down_delay again."""
    retry, _ = make_retry(attempts=1)
    retry.run(lambda deadline: RETRY)
    retry.open_until = 0.0
    retry.run(lambda deadline: RETRY)  # second failure: 2 s
    retry.open_until = 0.0
    assert retry.run(lambda deadline: DONE)
    assert not retry.is_open()
    retry.run(lambda deadline: RETRY)
    assert 1 == round(retry.open_until - time.monotonic())


def test_give_up_stops_quick_retries_and_honours_the_peers_pause_within_the_cap() -> None:
    """give_up(pause) ends the run at once; the breaker stays open that long, at most the cap."""
    retry, waits = make_retry()
    assert not retry.run(lambda deadline: give_up(3.0))
    assert ([], 3) == (waits, round(retry.open_until - time.monotonic()))
    retry.open_until = 0.0
    retry.run(lambda deadline: give_up(60.0))
    assert 4 == round(retry.open_until - time.monotonic())


def test_no_quick_retry_would_end_after_the_deadline() -> None:
    """A retry whose wait would pass the deadline is not made (exit: spool at once)."""
    retry, waits = make_retry(backoff=5.0)
    deadline = time.monotonic() + 1.0
    assert not retry.run(lambda given: RETRY, limit=lambda: deadline)
    assert ([], 0) == (waits, retry.retries)


def test_spool_keeps_relative_names_and_replays_oldest_first(tmp_path: Path) -> None:
    """Files come back under the names they were put, ordered by file name, then are gone."""
    spool = Spool(str(tmp_path), suffix=".bin", max_bytes=1000)
    spool.put("b/002.bin", b"two")
    spool.put("a/003.bin", b"three")
    spool.put("001.bin", b"one")
    (tmp_path / "not-ours.txt").write_text("x")
    sent: list[tuple[str, bytes]] = []

    def send(name: str, data: bytes) -> bool:
        sent.append((name, data))
        return True

    assert spool.replay(send)
    assert [("001.bin", b"one"), ("b/002.bin", b"two"), ("a/003.bin", b"three")] == sent
    assert [] == spool.pending()


def test_spool_refuses_what_does_not_fit(tmp_path: Path) -> None:
    """A file beyond max_bytes raises SpoolFull and leaves the spool as it was."""
    spool = Spool(str(tmp_path / "spool"), suffix=".bin", max_bytes=10)
    spool.put("a.bin", b"12345678")
    with pytest.raises(SpoolFull):
        spool.put("b.bin", b"123")
    assert ["a.bin"] == spool.pending()


def test_a_refused_or_failed_replay_keeps_the_file(tmp_path: Path) -> None:
    """send() returning False or raising puts the file back, and the replay stops there."""
    spool = Spool(str(tmp_path), suffix=".bin", max_bytes=1000)
    spool.put("1.bin", b"x")
    spool.put("2.bin", b"y")
    assert not spool.replay(lambda name, data: False)

    def broken(name: str, data: bytes) -> bool:
        raise OSError("store down")

    with pytest.raises(OSError, match="store down"):
        spool.replay(broken)
    assert ["1.bin", "2.bin"] == spool.pending()


def test_a_claimed_file_is_hidden_until_its_claim_is_stale(tmp_path: Path) -> None:
    """A file another process is sending is not listed; a claim left by a dead one comes back."""
    spool = Spool(str(tmp_path), suffix=".bin", max_bytes=1000)
    spool.put("1.bin", b"x")
    claimed = tmp_path / "1.bin.4242.sending"
    os.replace(tmp_path / "1.bin", claimed)
    assert [] == spool.pending()
    long_ago = time.time() - STALE_CLAIM_SECONDS - 1
    os.utime(claimed, (long_ago, long_ago))
    assert ["1.bin"] == spool.pending()


def test_bounded_caller_gives_up_on_a_hung_call_and_serves_the_next() -> None:
    """A hung call raises TimeoutError when give_up says so; the next call still runs at once."""
    caller = BoundedCaller("test-put")
    release = threading.Event()
    with pytest.raises(TimeoutError):
        caller.call(lambda: release.wait(10), give_up=lambda: True)
    done: list[str] = []
    caller.call(lambda: done.append("next"), give_up=lambda: False)
    release.set()
    assert ["next"] == done


def test_bounded_caller_hands_back_the_calls_error() -> None:
    """An exception of the call is raised in the caller's thread."""
    caller = BoundedCaller("test-put")

    def fail() -> None:
        raise ValueError("bad file")

    with pytest.raises(ValueError, match="bad file"):
        caller.call(fail, give_up=lambda: False)
