"""A full queue: producers wait for the worker (bounded), a stuck sink never hangs them."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

import span_tree
from span_tree import FinishedSpan


class SlowSink:
    """A sink slower than the producers: each batch takes a little while."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def export(self, batch: Sequence[FinishedSpan]) -> None:
        time.sleep(0.002)
        self.names.extend(record.name for record in batch)

    def force_flush(self, timeout: float) -> bool:
        return True

    def shutdown(self) -> None:
        pass


class HungSink(SlowSink):
    """A sink whose export never returns until released (a hung network call)."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()

    def export(self, batch: Sequence[FinishedSpan]) -> None:
        self.entered.set()
        self.release.wait(30)
        super().export(batch)


def configure(sink: SlowSink, **options: object) -> None:
    span_tree.configure(
        sinks=[sink], console=False, jsonl=False, store=None, capture_logging=False, **options
    )


def produce(threads: int, spans_each: int) -> None:
    def work(index: int) -> None:
        for number in range(spans_each):
            with span_tree.span(f"t{index}-{number}"):
                pass

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert not worker.is_alive(), "a producer hung on the full queue"


def test_producers_faster_than_the_sink_lose_nothing() -> None:
    """Four threads filling a small queue wait for the worker: every span is exported."""
    sink = SlowSink()
    configure(sink, max_queue_size=50, batch_size=10)
    produce(threads=4, spans_each=300)
    assert span_tree.flush(30)
    stats = span_tree.stats()
    assert 0 == stats["dropped"]
    assert stats["blocked"] > 0
    # Patched threads make each thread's spans children of nothing: 1,200 roots.
    assert 1200 == len(sink.names) == len(set(sink.names))


def test_a_hung_sink_costs_one_bounded_wait_then_drops() -> None:
    """With the worker stuck in a sink, a producer waits once (≤ max_block), then drops."""
    sink = HungSink()
    configure(sink, max_queue_size=20, batch_size=5, schedule_delay=0.01)
    with span_tree.span("first"):
        pass
    assert sink.entered.wait(10)  # the worker took "first" and hangs in export
    started = time.monotonic()
    produce(threads=1, spans_each=200)
    elapsed = time.monotonic() - started
    stats = span_tree.stats()
    sink.release.set()
    assert span_tree.flush(30)
    assert 1 == stats["blocked"]  # one wait; then dropping until the worker moves again
    assert 200 - 20 == stats["dropped"]
    assert elapsed < 10, "producers must not wait on a hung sink span after span"


def test_drop_policy_never_waits() -> None:
    """on_full="drop" drops at once when the queue is full (the OpenTelemetry SDK's way)."""
    sink = HungSink()
    configure(sink, max_queue_size=20, batch_size=5, schedule_delay=0.01, on_full="drop")
    with span_tree.span("first"):
        pass
    assert sink.entered.wait(10)
    produce(threads=1, spans_each=100)
    stats = span_tree.stats()
    sink.release.set()
    assert (0, 80) == (stats["blocked"], stats["dropped"])


def test_unknown_policy_is_a_clear_error() -> None:
    """A misspelt on_full is refused by configure with the allowed values."""
    with pytest.raises(ValueError, match="on_full must be 'block' or 'drop'"):
        configure(SlowSink(), on_full="wait")


BUSY_LOOP = """
import sys, span_tree
from span_tree.sinks.parquet import ParquetSink
span_tree.configure(sinks=[ParquetSink(sys.argv[1], max_rows=20_000)])
for i in range(20_000):
    with span_tree.span("root"):
        for j in range(9):
            with span_tree.span("child"):
                pass
span_tree.flush(120)
print(span_tree.stats()["dropped"])
"""


@pytest.mark.slow
def test_batch_job_in_a_tight_loop_stores_every_span(tmp_path: Path) -> None:
    """200,000 spans from a busy loop into a Parquet sink: all of them reach the store."""
    import duckdb

    result = subprocess.run(
        [sys.executable, "-c", BUSY_LOOP, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert (0, "0") == (result.returncode, result.stdout.strip()), result.stderr[-2000:]
    files = str(tmp_path / "**" / "*.parquet")
    rows = duckdb.sql(f"select count(*) from read_parquet('{files}')").fetchall()
    assert [(200_000,)] == rows


UNREAD_PIPE = """
import json, sys
import span_tree

def peak_kb():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))

span_tree.configure(console=False, jsonl=True, store=None, capture_logging=False,
                    max_queue_size=2_000)
with span_tree.span("warm-up", item=-1):
    pass
before = peak_kb()
for item in range(200_000):
    with span_tree.span("busy", item=item):
        pass
stats = span_tree.stats()
with open(sys.argv[1], "w") as out:
    json.dump({"grown_kb": peak_kb() - before, "queued": stats["queued"],
               "dropped": stats["dropped"]}, out)
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmHWM (Linux)")
def test_jsonl_sink_on_an_unread_pipe_keeps_memory_bounded(tmp_path: Path) -> None:
    """JSON lines into a stdout pipe nobody reads: the queue bound holds, memory stays flat.

    The default sink writes to stdout; a full pipe blocks its write, producers wait once,
    then drop and count. Every span is either printed (after the reader starts) or counted.
    """
    result_path = tmp_path / "result.json"
    child = subprocess.Popen(
        [sys.executable, "-c", UNREAD_PIPE, str(result_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 240
        while not result_path.exists() or not result_path.read_text().endswith("}"):
            assert child.poll() is None, child.stderr.read().decode()[-2000:]  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "the producer never finished"
            time.sleep(0.05)
        # Only now is the pipe read: the exit flush writes what is still queued.
        output, errors = child.communicate(timeout=120)
    finally:
        child.kill()
    result = json.loads(result_path.read_text())
    lines = output.count(b"\n")
    assert 0 == child.returncode, errors.decode()[-2000:]
    assert result["queued"] <= 2_000
    # 200,000 queued spans would take over 100 MB; the bound is 2,000 of them.
    assert result["grown_kb"] < 40_000, result
    assert 200_001 == lines + result["dropped"]
