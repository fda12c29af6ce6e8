"""The receiver's OTLP routes in-process (ASGI): behaviour that needs control of timing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import duckdb
import httpx
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from starlette.applications import Starlette

from span_tree.otel._outbound import add_attributes
from span_tree.receiver import create_app, key_store


def one_span_body() -> bytes:
    """A valid ExportTraceServiceRequest with one span."""
    return spans_body([1_700_000_000])


def spans_body(starts: list[int]) -> bytes:
    """A valid ExportTraceServiceRequest with one 1-second span per start (Unix seconds),
    each with one event named after it."""
    request = trace_service_pb2.ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    add_attributes(resource_spans.resource.attributes, [("service.name", "svc")])
    scope = resource_spans.scope_spans.add()
    for index, start in enumerate(starts, start=1):
        span = scope.spans.add()
        span.trace_id, span.name = b"\x01" * 16, f"s{index}"
        span.span_id = index.to_bytes(8, "big")
        span.start_time_unix_nano, span.end_time_unix_nano = start * 10**9, (start + 1) * 10**9
        event = span.events.add()
        event.name, event.time_unix_nano = f"e{index}", start * 10**9 + 1000
        add_attributes(event.attributes, [("n", index)])
    return request.SerializeToString()


async def post_traces(app: Starlette, key: str, body: bytes) -> httpx.Response:
    """POST one protobuf body to ``/v1/traces`` in-process."""
    headers = {"X-API-Key": key, "Content-Type": "application/x-protobuf"}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://receiver") as client:
        return await client.post("/v1/traces", content=body, headers=headers)


async def test_spans_outside_the_window_are_rejected_one_by_one(tmp_path: Path) -> None:
    """Spans older than --max-age-days or far in the future are partial-success rejections;
    the others are stored (an exporter would drop a wholly refused batch)."""
    key = key_store(str(tmp_path)).create("team")
    app = create_app(str(tmp_path), max_age_days=7, compact_interval=None)
    now = int(time.time())
    body = spans_body([now - 3600, now - 30 * 86_400, now + 400 * 86_400, now - 60])
    response = await post_traces(app, key, body)
    answer = trace_service_pb2.ExportTraceServiceResponse.FromString(response.content)
    stored = duckdb.sql(
        f"select name from read_parquet('{tmp_path}/spans/**/*.parquet') order by name"
    ).fetchall()
    assert (200, 2) == (response.status_code, answer.partial_success.rejected_spans)
    assert "2 spans start outside the accepted window" in answer.partial_success.error_message
    assert [("s1",), ("s4",)] == stored


async def test_spans_of_one_request_on_two_days_keep_their_events(tmp_path: Path) -> None:
    """A request whose spans start on two days is stored in both day partitions, every span
    with its own event (the columns path hands the writer's records path its events)."""
    key = key_store(str(tmp_path)).create("team")
    app = create_app(str(tmp_path), compact_interval=None)
    midnight = int(time.time()) // 86_400 * 86_400
    response = await post_traces(app, key, spans_body([midnight - 60, midnight + 60]))
    stored = duckdb.sql(
        f"select name, date, events[1].message, events[1].attributes"
        f" from read_parquet('{tmp_path}/spans/**/*.parquet', hive_partitioning = true)"
        " order by name"
    ).fetchall()
    days = [time.strftime("%Y-%m-%d", time.gmtime(t)) for t in (midnight - 60, midnight + 60)]
    assert 200 == response.status_code
    assert [("s1", days[0], "e1", '{"n":1}'), ("s2", days[1], "e2", '{"n":2}')] == [
        (name, str(date), message, attributes) for name, date, message, attributes in stored
    ]


async def test_spans_on_too_many_days_are_refused(tmp_path: Path) -> None:
    """One request whose spans start on more days than --max-partitions is a 400 that says
    so, and writes nothing."""
    key = key_store(str(tmp_path)).create("team")
    app = create_app(str(tmp_path), max_partitions=2, compact_interval=None)
    now = int(time.time())
    response = await post_traces(app, key, spans_body([now - day * 86_400 for day in range(3)]))
    status = status_pb2.Status.FromString(response.content)
    assert (400, []) == (response.status_code, list(tmp_path.glob("spans/**/*.parquet")))
    assert "spans start on 3 different days" in status.message


async def test_overload_answers_429_with_retry_after(tmp_path: Path) -> None:
    """With every request slot taken and one waiting, the next is told to retry (429)."""
    key = key_store(str(tmp_path)).create("team")
    app = create_app(str(tmp_path), max_concurrent_requests=1)
    headers = {"X-API-Key": key, "Content-Type": "application/x-protobuf"}
    body = one_span_body()
    release = asyncio.Event()

    async def slow_body() -> AsyncIterator[bytes]:
        yield body[:5]
        await release.wait()
        yield body[5:]

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://receiver") as client:
        holding = asyncio.create_task(
            client.post("/v1/traces", content=slow_body(), headers=headers)
        )
        await asyncio.sleep(0.2)
        waiting = asyncio.create_task(client.post("/v1/traces", content=body, headers=headers))
        await asyncio.sleep(0.2)
        refused = await client.post("/v1/traces", content=body, headers=headers)
        release.set()
        first, second = await holding, await waiting
    assert (200, 200) == (first.status_code, second.status_code)
    assert (429, "1") == (refused.status_code, refused.headers["retry-after"])
