"""The receiver's OTLP routes in-process (ASGI): behaviour that needs control of timing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from span_tree.otel._outbound import add_attributes
from span_tree.receiver import create_app, key_store


def one_span_body() -> bytes:
    """A valid ExportTraceServiceRequest with one span."""
    request = trace_service_pb2.ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    add_attributes(resource_spans.resource.attributes, [("service.name", "svc")])
    span = resource_spans.scope_spans.add().spans.add()
    span.trace_id, span.span_id, span.name = b"\x01" * 16, b"\x02" * 8, "s"
    span.start_time_unix_nano, span.end_time_unix_nano = (
        1_700_000_000 * 10**9,
        1_700_000_001 * 10**9,
    )
    return request.SerializeToString()


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
