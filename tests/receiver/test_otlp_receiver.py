"""OTLP/HTTP into a real `spantree serve` child: the stock OTel SDK exporters, bad input."""

from __future__ import annotations

import glob
import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.rpc import status_pb2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode
from support.otlp import OtlpReceiver, spantree, sql_rows

from span_tree.otel._outbound import add_attributes

pytestmark = pytest.mark.slow

PROTOBUF = {"Content-Type": "application/x-protobuf"}
MAX_BODY = 64 * 1024
T0 = 1_700_000_000_000_000_000


@pytest.fixture(scope="module")
def receiver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OtlpReceiver]:
    """One receiver for the module, with a small body limit and span limit."""
    store = str(tmp_path_factory.mktemp("otlp-store"))
    with OtlpReceiver(store, args=["--max-body", str(MAX_BODY), "--max-spans", "200"]) as running:
        yield running


def span_files(store: str) -> list[str]:
    """Every span file in the store."""
    return sorted(glob.glob(f"{store}/spans/**/*.parquet", recursive=True))


def tracer_provider(receiver: OtlpReceiver, **exporter: Any) -> TracerProvider:
    """An SDK provider exporting to the receiver with the stock OTLP/HTTP exporter."""
    resource = Resource.create(
        {"service.name": "shop", "service.version": "2.0", "deployment.environment.name": "ci"}
    )
    provider = TracerProvider(resource=resource)
    headers = exporter.pop("headers", {"x-api-key": receiver.key})
    provider.add_span_processor(
        SimpleSpanProcessor(
            OTLPSpanExporter(endpoint=receiver.url + "/v1/traces", headers=headers, **exporter)
        )
    )
    return provider


def one_span_request(**fields: Any) -> Any:
    """An ExportTraceServiceRequest holding one span (fields override the defaults)."""
    request = trace_service_pb2.ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    add_attributes(resource_spans.resource.attributes, [("service.name", "raw")])
    span = resource_spans.scope_spans.add().spans.add()
    span.trace_id = fields.pop("trace_id", bytes.fromhex("5b8efff798038103d269b633813fc60c"))
    span.span_id = fields.pop("span_id", bytes.fromhex("eee19b7ec3c1b174"))
    span.name = fields.pop("name", "raw-span")
    span.start_time_unix_nano = fields.pop("start_time_unix_nano", T0)
    span.end_time_unix_nano = fields.pop("end_time_unix_nano", T0 + 1000)
    for key, value in fields.items():
        setattr(span, key, value)
    return request


def post(receiver: OtlpReceiver, body: bytes, **headers: str) -> httpx.Response:
    """POST bytes to /v1/traces with the module's key unless headers say otherwise."""
    sent = {"X-API-Key": receiver.key, **PROTOBUF, **headers}
    return httpx.post(receiver.url + "/v1/traces", content=body, headers=sent, timeout=30)


def status_message(response: httpx.Response) -> str:
    """The message of an error answer's google.rpc.Status body."""
    if response.headers["content-type"].startswith("application/json"):
        return str(response.json()["message"])
    return str(status_pb2.Status.FromString(response.content).message)


def test_stock_sdk_exporter_lands_a_queryable_trace(receiver: OtlpReceiver) -> None:
    """Spans of the SDK's OTLP/HTTP exporter are stored; `spantree trace <hex>` finds them."""
    provider = tracer_provider(receiver)
    tracer = provider.get_tracer("shop.checkout")
    with tracer.start_as_current_span("POST /checkout", kind=SpanKind.SERVER) as root:
        with tracer.start_as_current_span("SELECT carts", attributes={"db.rows": 3}):
            pass
        try:
            with tracer.start_as_current_span("charge") as charge:
                charge.add_event("retrying", {"attempt": 2})
                raise RuntimeError("card 4242 declined")
        except RuntimeError:
            root.set_status(Status(StatusCode.ERROR, "checkout failed"))
    provider.shutdown()
    hex_id = format(root.get_span_context().trace_id, "032x")

    shown = spantree("trace", hex_id, "--store", receiver.store)
    assert 0 == shown.returncode, shown.stderr
    for name in ("POST /checkout", "SELECT carts", "charge", "retrying", "card 4242 declined"):
        assert name in shown.stdout

    rows = sql_rows(
        receiver.store,
        "select name, kind, status, app, app_version, tags['env'] as env, error_type"
        " from spans where app = 'shop' and attributes like '%shop.checkout%' order by name",
    )
    assert [
        ["POST /checkout", "server", "failed", "shop", "2.0", "ci", "Error"],
        ["SELECT carts", "internal", "succeeded", "shop", "2.0", "ci", None],
        ["charge", "internal", "failed", "shop", "2.0", "ci", "RuntimeError"],
    ] == [list(row.values()) for row in rows]


def test_bearer_key_gzip_and_logs_from_the_sdk(receiver: OtlpReceiver) -> None:
    """Authorization: Bearer works, gzip bodies too, and SDK log records join their span."""
    # The SDK's logs API directly: its logging.Handler bridge is deprecated (a warning).
    from opentelemetry.exporter.otlp.proto.http import Compression

    provider = tracer_provider(
        receiver,
        headers={"Authorization": f"Bearer {receiver.key}"},
        compression=Compression.Gzip,
    )
    logs = LoggerProvider(resource=Resource.create({"service.name": "shop-logs"}))
    logs.add_log_record_processor(
        SimpleLogRecordProcessor(
            OTLPLogExporter(
                endpoint=receiver.url + "/v1/logs",
                headers={"x-api-key": receiver.key},
                compression=Compression.Gzip,
            )
        )
    )
    otel_logger = logs.get_logger("shop.logs.test")
    try:
        with provider.get_tracer("t").start_as_current_span("with-logs") as span:
            otel_logger.emit(body="stock low: 2 left", severity_number=SeverityNumber.WARN)
        otel_logger.emit(body="no span here", severity_number=SeverityNumber.ERROR)
    finally:
        logs.shutdown()
        provider.shutdown()
    hex_id = format(span.get_span_context().trace_id, "032x")
    shown = spantree("trace", hex_id, "--store", receiver.store)
    assert 0 == shown.returncode, shown.stderr
    assert "with-logs" in shown.stdout and "stock low: 2 left" in shown.stdout
    rows = sql_rows(
        receiver.store,
        "select parent_id is null as alone, level, events[1].message as message"
        " from spans where app = 'shop-logs' order by message",
    )
    assert [[True, "ERROR", "no span here"], [False, "WARNING", "stock low: 2 left"]] == [
        list(row.values()) for row in rows
    ]


def test_otlp_json_body_with_hex_ids(receiver: OtlpReceiver) -> None:
    """An OTLP/JSON body (hex ids, string int64s) is stored; the answer is JSON too."""
    body = {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "json-svc"}}]
                },
                "scopeSpans": [
                    {
                        "scope": {"name": "manual"},
                        "spans": [
                            {
                                "traceId": "5b8efff798038103d269b633813fc60d",
                                "spanId": "eee19b7ec3c1b173",
                                "name": "json-span",
                                "kind": 3,
                                "startTimeUnixNano": str(T0),
                                "endTimeUnixNano": str(T0 + 2_000_000),
                                "attributes": [{"key": "n", "value": {"intValue": "7"}}],
                                "unknownField": "ignored",
                            },
                            {"traceId": "zz", "spanId": "eee19b7ec3c1b174", "name": "bad"},
                        ],
                    }
                ],
            }
        ]
    }
    response = httpx.post(
        receiver.url + "/v1/traces",
        json=body,
        headers={"X-API-Key": receiver.key},
        timeout=30,
    )
    assert 200 == response.status_code
    assert "application/json" == response.headers["content-type"]
    partial = response.json()["partialSuccess"]
    assert "1" == partial["rejectedSpans"]
    assert "invalid trace_id" in partial["errorMessage"]
    rows = sql_rows(
        receiver.store, "select kind, duration_us, attributes from spans where name = 'json-span'"
    )
    assert [["client", 2000, {"n": 7, "otel.scope.name": "manual"}]] == [
        list(row.values()) for row in rows
    ]


def test_partial_success_counts_rejected_spans(receiver: OtlpReceiver) -> None:
    """An all-zero trace id and an end before the start are rejected; the good span is kept."""
    request = one_span_request(name="kept-span")
    spans = request.resource_spans[0].scope_spans[0].spans
    spans.add().CopyFrom(spans[0])
    spans[1].trace_id = bytes(16)
    spans.add().CopyFrom(spans[0])
    spans[2].end_time_unix_nano = T0 - 1
    response = post(receiver, request.SerializeToString())
    assert 200 == response.status_code
    answer = trace_service_pb2.ExportTraceServiceResponse.FromString(response.content)
    assert 2 == answer.partial_success.rejected_spans
    assert (
        "invalid trace_id (must be 16 bytes, not all zero)" in answer.partial_success.error_message
    )
    assert (
        "end_time_unix_nano is before start_time_unix_nano" in answer.partial_success.error_message
    )
    rows = sql_rows(receiver.store, "select count(*) as n from spans where name = 'kept-span'")
    assert [{"n": 1}] == rows


@pytest.mark.parametrize(
    ("headers", "status", "message"),
    [
        ({"X-API-Key": "st_nope_nope"}, 401, "missing or invalid API key"),
        ({"X-API-Key": "", "Authorization": "Basic abc"}, 401, "missing or invalid API key"),
        ({"Content-Type": "text/plain"}, 415, "unsupported Content-Type 'text/plain'"),
        ({"Content-Encoding": "br"}, 415, "unsupported Content-Encoding 'br'"),
    ],
)
def test_refusals_say_why(
    receiver: OtlpReceiver, headers: dict[str, str], status: int, message: str
) -> None:
    """Wrong key -> 401, wrong content type or encoding -> 415, with a google.rpc.Status body."""
    before = span_files(receiver.store)
    response = post(receiver, one_span_request().SerializeToString(), **headers)
    assert (status, True) == (response.status_code, message in status_message(response))
    assert before == span_files(receiver.store)


def test_bad_bodies_are_400_or_413_and_write_nothing(receiver: OtlpReceiver) -> None:
    """Malformed protobuf/JSON/gzip -> 400; oversized, gzip bomb, too many spans -> 413."""
    before = span_files(receiver.store)
    many = one_span_request()
    spans = many.resource_spans[0].scope_spans[0].spans
    for _ in range(250):
        spans.add().CopyFrom(spans[0])
    cases = [
        (post(receiver, b"\x0a\xff\xff\xff\xff\x0f garbage"), 400, "invalid OTLP protobuf body"),
        (
            post(receiver, b"{not json", **{"Content-Type": "application/json"}),
            400,
            "invalid OTLP/JSON body",
        ),
        (post(receiver, b"not gzip", **{"Content-Encoding": "gzip"}), 400, "invalid gzip body"),
        (post(receiver, b"\x00" * (MAX_BODY + 1)), 413, "body too large"),
        (
            post(
                receiver, gzip.compress(b"\x00" * (50 * MAX_BODY)), **{"Content-Encoding": "gzip"}
            ),
            413,
            "body too large once decompressed",
        ),
        (post(receiver, many.SerializeToString()), 413, "too many spans in one request: 251"),
    ]
    assert [(status, True) for _, status, _ in cases] == [
        (response.status_code, message in status_message(response))
        for response, _, message in cases
    ]
    assert before == span_files(receiver.store)
    assert 200 == httpx.get(receiver.url + "/v1/health", timeout=5).status_code


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    data=st.binary(max_size=300)
    | st.builds(
        lambda cut, flip: _mutated(one_span_request().SerializeToString(), cut, flip),
        st.integers(0, 200),
        st.integers(0, 255),
    )
)
def test_fuzzed_protobuf_bodies_never_break_the_receiver(
    receiver: OtlpReceiver, data: bytes
) -> None:
    """Random and mutated bodies get 200/400 with a message, never a 5xx; the server stays up."""
    response = post(receiver, data)
    assert response.status_code in (200, 400), response.text
    if response.status_code == 400:
        assert status_message(response)
    assert 200 == httpx.get(receiver.url + "/v1/health", timeout=5).status_code


def _mutated(data: bytes, cut: int, flip: int) -> bytes:
    index = cut % len(data)
    return data[:index] + bytes([data[index] ^ flip]) + data[index + 1 :]


def test_cli_finds_the_trace_by_w3c_id(receiver: OtlpReceiver, tmp_path: Path) -> None:
    """The stored trace's W3C id (spantree sql) equals the OTel trace id that was sent."""
    hex_id = "0af7651916cd43dd8448eb211c80319c"
    response = post(
        receiver, one_span_request(trace_id=bytes.fromhex(hex_id), name="w3c").SerializeToString()
    )
    assert 200 == response.status_code
    shown = spantree("trace", hex_id, "--store", receiver.store, "--format", "json")
    assert 0 == shown.returncode, shown.stderr
    assert "w3c" in json.dumps(json.loads(shown.stdout))


def test_a_resent_body_adds_no_rows(receiver: OtlpReceiver) -> None:
    """An exporter retrying the same bytes (lost answer, 503) stores its spans once."""
    body = one_span_request(
        trace_id=bytes.fromhex("1af7651916cd43dd8448eb211c80319c"), name="resent"
    ).SerializeToString()
    before = span_files(receiver.store)
    assert [200, 200] == [post(receiver, body).status_code for _ in range(2)]
    added = sorted(set(span_files(receiver.store)) - set(before))
    assert (1, True) == (len(added), added[0].endswith(".b.parquet"))


json_leaves = st.none() | st.booleans() | st.integers() | st.text(max_size=12)
OTLP_KEYS = [
    "resourceSpans",
    "scopeSpans",
    "spans",
    "traceId",
    "spanId",
    "name",
    "startTimeUnixNano",
    "endTimeUnixNano",
    "attributes",
    "key",
    "value",
    "stringValue",
    "events",
    "links",
    "status",
    "code",
    "kind",
    "x",
]
json_documents = st.recursive(
    json_leaves,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(OTLP_KEYS), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(document=json_documents)
def test_fuzzed_otlp_json_bodies_never_break_the_receiver(
    receiver: OtlpReceiver, document: Any
) -> None:
    """OTLP/JSON-shaped garbage gets 200 (partial success) or 400 with a message, never a 5xx."""
    response = post(receiver, json.dumps(document).encode(), **{"Content-Type": "application/json"})
    assert response.status_code in (200, 400), response.text
    if response.status_code == 400:
        assert response.json()["message"]
