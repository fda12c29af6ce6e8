"""Several receivers, one store: two receiver processes behind a "load balancer" (clients
spread their requests over both) writing one S3 store (moto on loopback), each running
its background compaction meanwhile. The deployment the README's Scaling section
describes."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from datetime import time as dt_time
from typing import Any

import httpx
import pytest

from span_tree import new_trace_id
from span_tree.analytics import Store
from span_tree.receiver import key_store
from span_tree.storage import compact, list_span_files, open_store, span_files, write_spans

pytestmark = pytest.mark.slow

NAMESPACE = "fleet"
CLIENTS = 4
REQUESTS_PER_CLIENT = 12
TRACES_PER_REQUEST = 5
SPANS_PER_TRACE = 4


def _free_ports(count: int, first: int = 18700, last: int = 18799) -> list[int]:
    """``count`` loopback ports of this suite's range that nothing listens on now."""
    ports = []
    for port in range(first, last + 1):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        ports.append(port)
        if len(ports) == count:
            return ports
    raise RuntimeError(f"no {count} free ports in {first}-{last}")


def _batch(first_us: int, client: int, request: int) -> list[dict[str, Any]]:
    """One request's spans: whole traces (a root and children), ids unique to the batch."""
    spans = []
    for trace_number in range(TRACES_PER_REQUEST):
        trace_id = new_trace_id()
        start = first_us + (client * 3_600 + request * 60 + trace_number) * 1_000_000
        root_id = f"{client:02x}{request:04x}{trace_number:02x}00000000"[:16]
        for child in range(SPANS_PER_TRACE):
            spans.append(
                {
                    "trace_id": trace_id,
                    "span_id": root_id[:-2] + f"{child:02x}",
                    "parent_id": None if child == 0 else root_id,
                    "name": "job" if child == 0 else f"step.{child}",
                    "status": "failed" if child == 0 and trace_number == 0 else "succeeded",
                    "error_type": "ValueError" if child == 0 and trace_number == 0 else None,
                    "error_message": f"bad input {request}" if trace_number == 0 else None,
                    "start_time": start + child * 1_000,
                    "end_time": start + 500_000,
                    "tags": {"client": str(client)},
                }
            )
    return spans


class Receiver:
    """One receiver process on a loopback port."""

    def __init__(self, store: str, port: int, options: dict[str, Any]) -> None:
        self.url = f"http://127.0.0.1:{port}"
        # Background compaction due every second: serve's defaults (a pass every 10 minutes
        # on files over 5 minutes old) never come due within a test.
        command = [
            *(sys.executable, "-m", "span_tree.cli", "serve", "--store", store),
            *("--port", str(port), "--storage-options", json.dumps(options)),
            *("--compact-interval", "1", "--compact-min-age", "0.5"),
        ]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL)

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"receiver exited with {self.process.returncode}")
            try:
                if httpx.get(self.url + "/v1/health", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError(f"receiver {self.url} did not answer within {timeout} s")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def receivers(s3_endpoint: Any, s3_bucket: str) -> Iterator[tuple[str, str, list[Receiver]]]:
    """One key created once, two receivers on the same S3 store; stopped after."""
    store = f"s3://{s3_bucket}/traces"
    options = s3_endpoint.storage_options
    key = key_store(store, storage_options=options).create(NAMESPACE)
    processes = [Receiver(store, port, options) for port in _free_ports(2)]
    try:
        for process in processes:
            process.wait_ready(timeout=90)
        yield store, key, processes
    finally:
        for process in processes:
            process.stop()


def test_two_receivers_one_store(
    s3_endpoint: Any, receivers: tuple[str, str, list[Receiver]]
) -> None:
    """Exact row counts and no duplicate span (retries land on the other receiver) while
    both receivers compact the store underneath; the same /v1/status from each."""
    store, key, processes = receivers
    options = s3_endpoint.storage_options
    yesterday = datetime.now(UTC).date() - timedelta(days=1)  # a closed partition
    first_us = int(datetime.combine(yesterday, dt_time(), tzinfo=UTC).timestamp() * 1e6)
    statuses: list[int] = []

    def client(number: int) -> None:
        with httpx.Client(headers={"X-API-Key": key}, timeout=60) as http:
            for request in range(REQUESTS_PER_CLIENT):
                spans = _batch(first_us, number, request)
                target = processes[(number + request) % len(processes)]
                response = http.post(target.url + "/v1/spans", json={"spans": spans})
                statuses.append(response.status_code)
                if request % 4 == 0:  # a retry after a lost answer, via the other receiver
                    other = processes[(number + request + 1) % len(processes)]
                    response = http.post(other.url + "/v1/spans", json={"spans": spans})
                    statuses.append(response.status_code)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {202} == set(statuses)
    sent = CLIENTS * REQUESTS_PER_CLIENT * TRACES_PER_REQUEST * SPANS_PER_TRACE
    requests = CLIENTS * REQUESTS_PER_CLIENT
    # The same (cached) filesystem throughout, as a long-lived reader has.
    fresh = options
    deadline = time.monotonic() + 300
    # The receivers' compaction merges the request files (at the lowest CPU priority, so
    # on a loaded machine it takes a while; polled gently: moto serves from this process).
    while time.monotonic() < deadline:
        if len(span_files(open_store(store, storage_options=fresh)).files) < requests:
            break
        time.sleep(3.0)
    with Store(store, storage_options=fresh) as opened:
        files = len(opened.files)
        counts = opened.sql(
            "select count(*), count(distinct (trace_id, span_id)), count(distinct trace_id)"
            " from spans"
        ).fetchall()[0]
    assert (sent, sent, sent // SPANS_PER_TRACE) == counts
    assert files < requests, "the receivers' compaction merged nothing"
    answers = []
    for process in processes:
        response = httpx.get(process.url + "/v1/status", headers={"X-API-Key": key}, timeout=120)
        answers.append((response.status_code, response.json()))
    assert 200 == answers[0][0]
    assert [answers[0]] * len(processes) == answers
    health = answers[0][1]["health"]
    traces = CLIENTS * REQUESTS_PER_CLIENT * TRACES_PER_REQUEST
    assert [(NAMESPACE, traces)] == [(row["namespace"], row["traces"]) for row in health]


def test_a_long_lived_reader_opens_files_written_after_its_first_listing(
    s3_endpoint: Any, s3_bucket: str
) -> None:
    """One process's listing (and s3fs cache) outlives other writers' files: a compacted
    file another process wrote later is read, not skipped as missing."""
    store = f"s3://{s3_bucket}/traces"
    options = s3_endpoint.storage_options
    writer = open_store(store, storage_options={**options, "skip_instance_cache": True})
    reader = open_store(store, storage_options=options)
    first_us = 1_767_225_600 * 1_000_000
    for request in range(3):
        write_spans(writer, [_record(first_us + request, f"{request:016x}")])
    assert 3 == len(list_span_files(reader).files)
    time.sleep(1.1)
    compacted = compact(writer, min_age=0.5, grace=30.0)
    listed = list_span_files(reader)
    assert (3, 1, []) == (compacted.files_in, len(listed.files), listed.problems)


def _record(start_us: int, span_id: str) -> Any:
    from span_tree._record import FinishedSpan

    return FinishedSpan(
        namespace=NAMESPACE, date="2026-01-01", trace_id=new_trace_id(), span_id=span_id,
        parent_id=None, seq=1, name="job", kind="internal", status="succeeded", level="INFO",
        start_time=start_us, end_time=start_us + 5, duration_us=5, file=None, line=None,
        function=None, app="a", app_version=None, host=None, pid=None, thread=None, task=None,
        tags={}, attributes={}, error_type=None, error_message=None, error_traceback=None,
        handled_errors=(), events=(), links=(), ref_src=(), ref_dest=(), written_at=None,
        schema_version=1,
    )  # fmt: skip
