"""The HTTP sink against real servers on loopback: the receiver, and scripted stand-ins."""

from __future__ import annotations

import glob
import gzip
import json
import os
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from support.http import LoopbackServer
from support.spans import stored_rows, unit_spans

import span_tree
from span_tree.receiver import key_store
from span_tree.receiver._subprocess import ReceiverProcess, free_port
from span_tree.sinks.http import HttpSink
from span_tree.testing import capture_spans

pytestmark = pytest.mark.slow


@pytest.fixture
def key(store: str) -> str:
    """A key for namespace "remote" in the store."""
    return key_store(store).create("remote")


def stored_ids(store: str) -> list[str]:
    """Span ids of every row in the store."""
    return [record.span_id for record in stored_rows(store)]


def test_configured_endpoint_sends_spans_to_the_store(
    receiver: ReceiverProcess, key: str, store: str, tmp_path: Path, monkeypatch: Any
) -> None:
    """configure(endpoint=, api_key=) puts the spans of this process in the store."""
    monkeypatch.setenv("SPANTREE_SPOOL_DIR", str(tmp_path / "spool"))
    span_tree.configure(
        endpoint=receiver.url,
        api_key=key,
        console=False,
        jsonl=False,
        store=None,
        schedule_delay=0.05,
        namespace="ignored-the-key-decides",
    )
    with capture_spans() as spans, span_tree.span("root"), span_tree.span("child"):
        pass
    assert span_tree.flush(10)
    sink_stats = next(s for s in span_tree.stats()["sinks"] if s["name"] == "HttpSink")
    assert sorted(s.span_id for s in spans) == sorted(stored_ids(store))
    assert (2, 0) == (sink_stats["sent_spans"], sink_stats["spool_files"])
    assert glob.glob(f"{store}/spans/namespace=remote/*/*.parquet")


def test_unreachable_receiver_spools_then_a_later_process_replays(
    store: str, key: str, tmp_path: Path
) -> None:
    """Spans exported while the receiver is down are spooled, then sent by the next sink."""
    port = free_port()
    spool = str(tmp_path / "spool")
    spans = unit_spans(30)
    first = HttpSink(f"http://127.0.0.1:{port}", api_key=key, spool_dir=spool, backoff=0.01)
    first.export(spans[:10])
    first.export(spans[10:])  # receiver still down: queued behind the spool, no error
    flushed_while_down = first.force_flush(0.2)
    first.shutdown()
    down = first.stats()
    receiver = ReceiverProcess(store, port=port)
    receiver.start()
    try:
        second = HttpSink(receiver.url, api_key=key, spool_dir=spool)
        flushed = second.force_flush(10)
        second.shutdown()
    finally:
        receiver.stop()
    assert (False, 30, 0) == (flushed_while_down, down["spooled_spans"], down["sent_spans"])
    assert (True, 30, 0) == (
        flushed,
        second.stats()["replayed_spans"],
        second.stats()["spool_files"],
    )
    assert sorted(s.span_id for s in spans) == sorted(stored_ids(store))


def test_receiver_restart_while_sending_loses_no_span(store: str, key: str, tmp_path: Path) -> None:
    """A client that keeps sending across a receiver restart loses nothing."""
    receiver = ReceiverProcess(store)
    receiver.start()
    span_tree.configure(
        sinks=[
            HttpSink(
                receiver.url,
                api_key=key,
                spool_dir=str(tmp_path / "spool"),
                backoff=0.01,
                max_backoff=0.2,
            )
        ],
        console=False,
        jsonl=False,
        store=None,
        schedule_delay=0.02,
    )
    produced: list[str] = []
    try:
        with capture_spans() as spans:
            for round_ in range(12):
                if round_ == 4:
                    receiver.stop()
                if round_ == 8:
                    receiver.start()
                for index in range(25):
                    with span_tree.span("work", round=round_, index=index):
                        pass
                span_tree.flush(2)  # export now: during the outage this spools
            produced = [s.span_id for s in spans]
        assert span_tree.flush(20)
        sink_stats = next(s for s in span_tree.stats()["sinks"] if s["name"] == "HttpSink")
    finally:
        receiver.stop()
    assert (300, sorted(produced)) == (len(produced), sorted(set(stored_ids(store))))
    assert (True, 0) == (sink_stats["spooled_spans"] > 0, sink_stats["spool_files"])


class ScriptedServer(LoopbackServer):
    """A stdlib HTTP server on loopback answering with scripted statuses, then 202."""

    def __init__(
        self,
        script: list[tuple[int, dict[str, str]]],
        on_post: Callable[[], None] | None = None,
    ) -> None:
        self.script = list(script)
        self.on_post = on_post
        self.requests: list[tuple[float, list[str], dict[str, str]]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                ids = [span["span_id"] for span in json.loads(body)["spans"]]
                outer.requests.append((time.monotonic(), ids, dict(self.headers)))
                if outer.on_post is not None:
                    outer.on_post()
                status, headers = outer.script.pop(0) if outer.script else (202, {})
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:
                pass

        super().__init__(Handler)

    def __enter__(self) -> ScriptedServer:
        return self


def test_429_retry_after_is_honoured_and_order_kept(tmp_path: Path) -> None:
    """After 429 Retry-After: 1 the sink waits, then sends the batches in their order."""
    spans = unit_spans(6)
    with ScriptedServer([(429, {"Retry-After": "1"})]) as server:
        sink = HttpSink(server.url, api_key="k", spool_dir=str(tmp_path))
        sink.export(spans[:3])
        sink.export(spans[3:])  # paused: goes to the spool behind the first batch
        requests_while_paused = len(server.requests)
        flushed = sink.force_flush(10)
        sink.shutdown()
    (first_time, _, headers), *rest = server.requests
    assert (1, True) == (requests_while_paused, flushed)
    assert [s.span_id for s in spans] == [i for _, ids, _ in rest for i in ids]
    assert rest[0][0] - first_time >= 1.0
    assert ("k", "gzip") == (headers["X-API-Key"], headers["Content-Encoding"])


def test_a_claimed_old_spool_file_is_not_taken_back_by_another_sink(tmp_path: Path) -> None:
    """A batch spooled long ago and now being sent stays claimed: sent once, not twice."""
    spans = unit_spans(3)
    spool = tmp_path / "spool"
    with ScriptedServer([(503, {})]) as server:
        sender = HttpSink(server.url, api_key="k", spool_dir=str(spool), max_retries=0)
        other = HttpSink(server.url, api_key="k", spool_dir=str(spool))
        sender.export(spans)  # 503: spooled
        (spooled,) = spool.iterdir()
        long_ago = time.time() - 3600
        os.utime(spooled, (long_ago, long_ago))
        server.on_post = other.stats  # the other sink looks at the spool mid-send
        flushed = sender.force_flush(10)
        left = other.stats()["spool_files"]
        sender.shutdown()
        other.shutdown()
    sent_after_503 = [ids for _, ids, _ in server.requests[1:]]
    assert (True, [[s.span_id for s in spans]], 0) == (flushed, sent_after_503, left)


def test_5xx_is_retried_within_the_export(tmp_path: Path) -> None:
    """A 503 without Retry-After, then 202: sent on the quick retry, nothing spooled."""
    spans = unit_spans(4)
    with ScriptedServer([(503, {}), (500, {})]) as server:
        sink = HttpSink(server.url, api_key="k", spool_dir=str(tmp_path), backoff=0.01)
        sink.export(spans)
        sink.shutdown()
    stats = sink.stats()
    assert (3, 2, 4, 0) == (
        len(server.requests),
        stats["retries"],
        stats["sent_spans"],
        stats["spooled_spans"],
    )


def test_refused_batch_is_counted_not_retried(
    receiver: ReceiverProcess, tmp_path: Path, store: str
) -> None:
    """A wrong key (401) drops the batch, counted as rejected, without spooling it."""
    sink = HttpSink(receiver.url, api_key="st_nope_nope", spool_dir=str(tmp_path))
    sink.export(unit_spans(5))
    sink.shutdown()
    stats = sink.stats()
    assert (5, 0, 0, []) == (
        stats["rejected_spans"],
        stats["spooled_spans"],
        stats["retries"],
        stored_ids(store),
    )


def test_tick_sends_the_spool_once_the_pause_is_over(tmp_path: Path) -> None:
    """Spooled after a 503, the batch goes out on a tick after the pause, with no new export."""
    spans = unit_spans(3)
    with ScriptedServer([(503, {})]) as server:
        sink = HttpSink(
            server.url, api_key="k", spool_dir=str(tmp_path), max_retries=0, backoff=0.05
        )
        sink.export(spans)
        spooled = sink.stats()["spool_files"]
        sink.tick()  # still paused: nothing is sent
        sent_while_paused = len(server.requests)
        time.sleep(0.15)
        sink.tick()
        sink.shutdown()
    assert (1, 1, 2) == (spooled, sent_while_paused, len(server.requests))
    assert ([s.span_id for s in spans], 0) == (server.requests[1][1], sink.stats()["spool_files"])


def test_full_spool_drops_and_counts(tmp_path: Path) -> None:
    """When the spool is full, spans are dropped and counted; export never raises."""
    sink = HttpSink(
        f"http://127.0.0.1:{free_port()}",
        api_key="k",
        spool_dir=str(tmp_path),
        max_spool_bytes=1,
        max_retries=0,
    )
    sink.export(unit_spans(7))
    sink.shutdown()
    assert (7, 0) == (sink.stats()["dropped_spans"], sink.stats()["spool_files"])


def test_big_batches_are_split_under_the_body_limit(
    receiver: ReceiverProcess, key: str, store: str, tmp_path: Path
) -> None:
    """Batches larger than max_body_bytes go out as several requests, all accepted."""
    spans = unit_spans(40)
    sink = HttpSink(receiver.url, api_key=key, spool_dir=str(tmp_path), max_body_bytes=4096)
    sink.export(spans)
    sink.shutdown()
    stats = sink.stats()
    assert (40, True) == (stats["sent_spans"], stats["sent_requests"] > 1)
    assert sorted(s.span_id for s in spans) == sorted(stored_ids(store))


def test_one_bad_span_does_not_sink_its_batch(
    receiver: ReceiverProcess, key: str, store: str, tmp_path: Path
) -> None:
    """A span the receiver refuses (422 with its index) is dropped; the rest is stored."""
    spans = unit_spans(5)
    spans[2] = spans[2]._replace(line=2**40)  # beyond the int32 column
    sink = HttpSink(receiver.url, api_key=key, spool_dir=str(tmp_path))
    sink.export(spans)
    sink.shutdown()
    stats = sink.stats()
    expected = sorted(s.span_id for i, s in enumerate(spans) if i != 2)
    assert (1, 4, expected) == (
        stats["rejected_spans"],
        stats["sent_spans"],
        sorted(stored_ids(store)),
    )
