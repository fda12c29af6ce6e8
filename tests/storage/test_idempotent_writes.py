"""No duplicate rows by construction: retries, spool replays and re-ingests put the same files."""

from __future__ import annotations

import contextlib
import gzip
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpx
import pyarrow.parquet as pq
import pytest
from support.http import LoopbackServer
from support.spans import unit_spans

from span_tree._record import span_to_json
from span_tree.receiver import key_store
from span_tree.receiver._subprocess import ReceiverProcess
from span_tree.sinks.http import HttpSink
from span_tree.sinks.parquet import ParquetSink
from span_tree.storage import list_span_files, open_store

pytestmark = pytest.mark.slow


def stored(store: str) -> tuple[list[str], int]:
    """(file names, rows) of what readers read in the store."""
    files = list_span_files(open_store(store)).files
    return [Path(path).name for path in files], sum(pq.read_metadata(p).num_rows for p in files)


class LossyProxy(LoopbackServer):
    """Forwards requests to the receiver; for the first ``drop`` ones, loses the answer.

    The receiver has written the batch when its answer is lost: what a client sees
    when a receiver writes, then times out or dies before answering.
    """

    def __init__(self, target: str, *, drop: int) -> None:
        self.target = target
        self.drop = drop
        self.forwarded: list[bytes] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                response = httpx.post(proxy.target + self.path, content=body, headers=headers)
                proxy.forwarded.append(body)
                if proxy.drop > 0:
                    proxy.drop -= 1
                    self.close_connection = True  # written, but the answer never arrives
                    return
                self.send_response(response.status_code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(response.content)))
                self.end_headers()
                self.wfile.write(response.content)

            def log_message(self, *args: Any) -> None:
                pass

        super().__init__(Handler)


@contextlib.contextmanager
def sink_losing_one_answer(
    receiver: ReceiverProcess, store: str, tmp_path: Path, *, max_retries: int
) -> Iterator[tuple[HttpSink, LossyProxy]]:
    """An HttpSink sending to the receiver through a proxy that loses the first answer."""
    proxy = LossyProxy(receiver.url, drop=1)
    try:
        yield (
            HttpSink(
                proxy.url,
                api_key=key_store(store).create("remote"),
                spool_dir=str(tmp_path / "spool"),
                max_retries=max_retries,
                backoff=0.01,
            ),
            proxy,
        )
    finally:
        proxy.close()


def test_http_retry_after_a_lost_answer_adds_no_rows(
    receiver: ReceiverProcess, store: str, tmp_path: Path
) -> None:
    """The receiver wrote but its answer was lost: the retry lands on the same file."""
    spans = unit_spans(5)
    with sink_losing_one_answer(receiver, store, tmp_path, max_retries=2) as (sink, proxy):
        sink.export(spans)
        sink.shutdown()
    names, rows = stored(store)
    assert (2, 1, 1, len(spans)) == (
        len(proxy.forwarded),
        len(set(proxy.forwarded)),
        len(names),
        rows,
    )
    batch = json.loads(gzip.decompress(proxy.forwarded[0]))["batch"]
    assert [f"{batch}.b.parquet"] == names


def test_spool_replay_after_a_lost_answer_adds_no_rows(
    receiver: ReceiverProcess, store: str, tmp_path: Path
) -> None:
    """A batch spooled after a lost answer and replayed later is written once."""
    spans = unit_spans(4)
    with sink_losing_one_answer(receiver, store, tmp_path, max_retries=0) as (sink, proxy):
        sink.export(spans)
        assert 1 == sink.stats()["spool_files"]  # the send "failed": kept for later
        assert sink.force_flush(10.0)
        sink.shutdown()
    names, rows = stored(store)
    assert (2, 1, len(spans)) == (len(proxy.forwarded), len(names), rows)


def test_parquet_sink_replay_of_a_put_that_landed_late_adds_no_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A put that finished after the sink gave up (and spooled it) is replayed onto itself."""
    from span_tree.storage._writer import put_prepared as real_put

    def slow_put(location: Any, prepared: Any) -> str:
        path = real_put(location, prepared)
        time.sleep(0.5)  # the file is in the store, the answer comes too late
        return path

    monkeypatch.setattr("span_tree.sinks.parquet.put_prepared", slow_put)
    store = str(tmp_path / "store")
    sink = ParquetSink(store, spool_dir=str(tmp_path / "spool"), put_timeout=0.1, retries=1)
    spans = unit_spans(3)
    sink.export(spans)
    sink.force_flush(5.0)
    assert 1 == sink.stats()["spool_pending_files"]
    monkeypatch.setattr("span_tree.sinks.parquet.put_prepared", real_put)
    sink._retry.close()  # the store answers again: replay now
    sink._replay(deadline=None)
    sink.shutdown()
    names, rows = stored(store)
    assert (0, 1, len(spans)) == (sink.stats()["spool_pending_files"], len(names), rows)
    assert names[0].endswith(".b.parquet")


def test_ingest_twice_adds_no_rows(tmp_path: Path) -> None:
    """`spantree ingest` of the same lines twice (even re-prefixed by a collector) adds nothing."""
    spans = unit_spans(6)
    year = 365 * 86_400 * 1_000_000  # µs
    earlier = [
        s._replace(span_id=s.span_id[::-1], start_time=s.start_time - year, end_time=s.start_time)
        for s in spans
    ]
    two_days = spans + earlier
    lines = [f"{index} stdout: {span_to_json(span)}" for index, span in enumerate(two_days)]
    source = tmp_path / "collected.log"
    source.write_text("\n".join(["starting", *lines, "bye"]) + "\n")
    store = str(tmp_path / "store")
    cli = [sys.executable, "-c", "from span_tree.cli import main; main()"]
    command = [*cli, "ingest", str(source), "--store", store]
    subprocess.run(command, check=True, capture_output=True)
    first = stored(store)
    source.write_text("\n".join(f"2026 {line}" for line in lines) + "\n")  # other prefixes
    subprocess.run(command, check=True, capture_output=True)
    assert first == stored(store)
    assert (2, len(two_days)) == (len(first[0]), first[1])
    assert 1 == len({name for name in first[0]})  # one batch name in both partitions


def test_receiver_body_without_batch_id_is_written_as_legacy(
    receiver: ReceiverProcess, store: str
) -> None:
    """A client that sends no batch id (older sinks) gets legacy files; a bad id is a 422."""
    key = key_store(store).create("old")
    spans = [json.loads(span_to_json(span)) for span in unit_spans(2)]
    url = receiver.url + "/v1/spans"
    headers = {"X-API-Key": key}
    assert 202 == httpx.post(url, json={"spans": spans}, headers=headers).status_code
    bad = httpx.post(url, json={"batch": "not-a-ksuid", "spans": spans}, headers=headers)
    assert (422, "batch") == (bad.status_code, bad.json()["field"])
    found = list_span_files(open_store(store))
    assert ([True], 2) == (found.legacy, sum(pq.read_metadata(p).num_rows for p in found.files))
