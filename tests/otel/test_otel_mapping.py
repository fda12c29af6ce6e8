"""The OTel mapping: OTLP -> span-tree records and back (span_tree.otel._mapping/_outbound)."""

from __future__ import annotations

import base64
import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

import span_tree
from span_tree._ids import w3c_trace_id
from span_tree._record import FinishedSpan
from span_tree._sanitize import DEFAULT_SCRUB_KEYS, SCRUBBED, scrub_pattern
from span_tree.otel._columns import columns_from_traces
from span_tree.otel._mapping import Mapped, records_from_logs, records_from_traces
from span_tree.otel._outbound import add_attributes, export_request
from span_tree.storage.schema import python_columns
from span_tree.testing import capture_spans

SCRUB = scrub_pattern(DEFAULT_SCRUB_KEYS)
TRACE = bytes.fromhex("4bf92f3577b34da6a3ce929d0e0e4736")
ROOT = bytes.fromhex("00f067aa0ba902b7")
CHILD = bytes.fromhex("00f067aa0ba902b8")
T0 = 1_700_000_000_000_000_000  # ns


def request_with(*spans: dict[str, Any], resource: dict[str, Any] | None = None) -> Any:
    """An ExportTraceServiceRequest of spans given as field dicts (one resource, one scope)."""
    request = trace_service_pb2.ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    add_attributes(
        resource_spans.resource.attributes,
        (resource or {"service.name": "shop"}).items(),
    )
    scope_spans = resource_spans.scope_spans.add()
    scope_spans.scope.name = "shop.instrumentation"
    scope_spans.scope.version = "0.1"
    for fields in spans:
        span = scope_spans.spans.add()
        values = {
            "trace_id": TRACE,
            "span_id": ROOT,
            "name": "GET /orders",
            "start_time_unix_nano": T0,
            "end_time_unix_nano": T0 + 5_000_000,
            **fields,
        }
        attributes = values.pop("attributes", {})
        events = values.pop("events", [])
        status = values.pop("status", None)
        for key, value in values.items():
            setattr(span, key, value)
        add_attributes(span.attributes, attributes.items())
        for name, offset, event_attributes in events:
            event = span.events.add()
            event.name = name
            event.time_unix_nano = T0 + offset
            add_attributes(event.attributes, event_attributes.items())
        if status is not None:
            span.status.code, span.status.message = status
    return request


def mapped(request: Any) -> Any:
    """Map a request for namespace "team" (and check the receiver's column path agrees)."""
    result = records_from_traces(request, namespace="team", scrub=SCRUB)
    assert result == mapped_columns(request, "team")
    return result


def mapped_columns(request: Any, namespace: str, scrub: Any = SCRUB) -> Mapped:
    """``columns_from_traces`` (the receiver's path) with its columns read back as records."""
    result = columns_from_traces(request, namespace=namespace, scrub=scrub)
    columns = python_columns(result.columns) if result.columns else []
    records = list(map(FinishedSpan._make, zip(*columns, strict=True)))
    return Mapped(records, result.accepted, result.rejected, result.reasons)


def test_resource_maps_to_app_version_env_and_tags() -> None:
    """service.name/version -> app/app_version, deployment.environment.name -> env, rest -> tags."""
    resource = {
        "service.name": "shop",
        "service.version": "1.4.2",
        "deployment.environment.name": "prod",
        "host.name": "web-1",
        "process.pid": 4242,
        "cloud.region": "eu-west-1",
        "k8s.pod.labels": ["a", "b"],
    }
    (record,) = mapped(request_with({}, resource=resource)).records
    assert ("shop", "1.4.2", "web-1", 4242) == (
        record.app,
        record.app_version,
        record.host,
        record.pid,
    )
    assert {"env": "prod", "cloud.region": "eu-west-1", "k8s.pod.labels": '["a", "b"]'} == dict(
        record.tags
    )


def test_older_deployment_environment_key_is_env_too() -> None:
    """The pre-1.27 key deployment.environment also becomes the env tag."""
    resource = {"service.name": "shop", "deployment.environment": "staging"}
    (record,) = mapped(request_with({}, resource=resource)).records
    assert {"env": "staging"} == dict(record.tags)


def test_a_foreign_trace_id_is_the_one_a_traceparent_continuation_gets() -> None:
    """An OTLP span's trace id is trace_id_from_w3c of its W3C id on both mapping paths (a
    request continued in-process from that trace's traceparent joins the same trace)."""
    from span_tree._ids import trace_id_from_w3c

    other = bytes(range(1, 17))
    request = request_with({}, {"span_id": CHILD, "trace_id": other})
    expected = [trace_id_from_w3c(TRACE.hex()), trace_id_from_w3c(other.hex())]
    assert expected == [record.trace_id for record in mapped(request).records]


def test_ids_times_kind_and_trace_id_reversible() -> None:
    """Ids become hex, times µs, the kind its name; the stored trace's W3C id is the OTel id."""
    request = request_with({}, {"span_id": CHILD, "parent_span_id": ROOT, "kind": 3})
    root, child = mapped(request).records
    assert TRACE.hex() == w3c_trace_id(root.trace_id) == w3c_trace_id(child.trace_id)
    assert (ROOT.hex(), None, "internal") == (root.span_id, root.parent_id, root.kind)
    assert (CHILD.hex(), ROOT.hex(), "client") == (child.span_id, child.parent_id, child.kind)
    assert (T0 // 1000, T0 // 1000 + 5000, 5000) == (
        root.start_time,
        root.end_time,
        root.duration_us,
    )
    assert "2023-11-14" == root.date


def test_attribute_value_types() -> None:
    """Strings, ints, doubles, bools, arrays, key-value lists and bytes all become JSON values
    (empty text and zero too)."""
    attributes = {
        "s": "text",
        "empty": "",
        "i": -7,
        "zero": 0,
        "f": 2.5,
        "b": True,
        "arr": [1, "two", 3.0, False],
        "kv": {"inner": {"deep": [1]}},
        "raw": b"\x00\xffbytes",
        "user.password": "hunter2",
    }
    (record,) = mapped(request_with({"attributes": attributes})).records
    expected = {
        "s": "text",
        "empty": "",
        "i": -7,
        "zero": 0,
        "f": 2.5,
        "b": True,
        "arr": [1, "two", 3.0, False],
        "kv": {"inner": {"deep": [1]}},
        "raw": base64.b64encode(b"\x00\xffbytes").decode(),
        "user.password": SCRUBBED,
        "otel.scope.name": "shop.instrumentation",
        "otel.scope.version": "0.1",
    }
    assert expected == dict(record.attributes)


def test_huge_attribute_value_is_truncated_not_rejected() -> None:
    """A 1 MB attribute value is stored cut to the library's bound, with a marker."""
    (record,) = mapped(request_with({"attributes": {"big": "x" * 1_000_000}})).records
    assert record.attributes["big"].startswith("x" * 4096)
    assert record.attributes["big"].endswith("[truncated 995904 chars]")


def test_error_status_takes_the_exception_event_into_the_error_columns() -> None:
    """Status ERROR -> failed; its exception event -> error columns; earlier ones -> handled."""
    events = [
        ("cache miss", 1000, {"key": "k1"}),
        (
            "exception",
            2000,
            {
                "exception.type": "KeyError",
                "exception.message": "'k1'",
                "exception.stacktrace": "tb1",
            },
        ),
        (
            "exception",
            3000,
            {
                "exception.type": "ValueError",
                "exception.message": "bad order 42",
                "exception.stacktrace": "Traceback ...",
                "exception.escaped": True,
            },
        ),
    ]
    (record,) = mapped(request_with({"events": events, "status": (2, "ValueError: bad")})).records
    assert ("failed", "ERROR") == (record.status, record.level)
    assert ("ValueError", "bad order 42", "Traceback ...") == (
        record.error_type,
        record.error_message,
        record.error_traceback,
    )
    assert [("KeyError", "'k1'", "tb1")] == [
        (error.type, error.message, error.traceback) for error in record.handled_errors
    ]
    assert [("cache miss", {"key": "k1"})] == [
        (event.message, dict(event.attributes)) for event in record.events
    ]


def test_exception_events_on_a_succeeded_span_are_handled_errors() -> None:
    """An exception event on a span that did not fail is a handled error, not a failure."""
    events = [("exception", 10, {"exception.type": "TimeoutError", "exception.message": "slow"})]
    (record,) = mapped(request_with({"events": events})).records
    assert ("succeeded", None) == (record.status, record.error_type)
    assert ["TimeoutError"] == [error.type for error in record.handled_errors]


def test_error_status_without_exception_uses_error_type_and_message() -> None:
    """ERROR without an exception event: error.type, else HTTP <status>, else "Error"."""
    request = request_with(
        {"attributes": {"error.type": "500"}, "status": (2, "Internal Server Error")}
    )
    (record,) = mapped(request).records
    assert ("failed", "500", "Internal Server Error") == (
        record.status,
        record.error_type,
        record.error_message,
    )
    http = request_with({"attributes": {"http.response.status_code": 503}, "status": (2, "")})
    assert ["HTTP 503"] == [record.error_type for record in mapped(http).records]
    plain = request_with({"status": (2, "boom")})
    assert [("Error", "boom")] == [(r.error_type, r.error_message) for r in mapped(plain).records]


def test_links_become_linked_trace_ids() -> None:
    """A link's trace id is stored as the linked trace's KSUID (same W3C id)."""
    request = request_with({})
    link = request.resource_spans[0].scope_spans[0].spans[0].links.add()
    other = bytes.fromhex("0af7651916cd43dd8448eb211c80319c")
    link.trace_id, link.span_id = other, ROOT
    (record,) = mapped(request).records
    assert [other.hex()] == [w3c_trace_id(linked) for linked in record.links]


def test_bad_spans_are_rejected_alone_with_reasons() -> None:
    """Zero ids and impossible times reject that span only; the reasons are counted."""
    request = request_with(
        {},
        {"trace_id": bytes(16), "span_id": CHILD},
        {"span_id": bytes(8)},
        {"span_id": CHILD, "start_time_unix_nano": 0},
        {"span_id": CHILD, "end_time_unix_nano": T0 - 1},
        {"span_id": CHILD, "start_time_unix_nano": 2**64 - 1},
        {"trace_id": b"short", "span_id": CHILD},
    )
    result = mapped(request)
    assert (1, 6) == (result.accepted, result.rejected)
    assert [ROOT.hex()] == [record.span_id for record in result.records]
    assert "invalid trace_id (must be 16 bytes, not all zero)" in result.message()
    assert "start_time_unix_nano out of range" in result.message()


def test_logs_with_span_ids_become_a_child_row_of_that_span() -> None:
    """Log records of one span become one `otel.logs` child row holding them as events."""
    request = logs_service_pb2.ExportLogsServiceRequest()
    resource_logs = request.resource_logs.add()
    add_attributes(resource_logs.resource.attributes, [("service.name", "shop")])
    scope_logs = resource_logs.scope_logs.add()
    scope_logs.scope.name = "shop.orders"
    for offset, severity, body in [(2, 17, "payment failed"), (1, 9, "charging card")]:
        record = scope_logs.log_records.add()
        record.time_unix_nano = T0 + offset * 1000
        record.severity_number = severity
        record.body.string_value = body
        record.trace_id, record.span_id = TRACE, ROOT
    orphan = scope_logs.log_records.add()
    orphan.observed_time_unix_nano = T0
    orphan.severity_text = "WARN"
    orphan.body.kvlist_value.values.add(key="n", value={"int_value": 1})
    zero = scope_logs.log_records.add()
    zero.time_unix_nano, zero.trace_id, zero.span_id = T0, bytes(16), bytes(8)
    zero.body.string_value = "all-zero ids: no trace"
    bad = scope_logs.log_records.add()
    bad.body.string_value = "no time at all"
    result = records_from_logs(request, namespace="team", scrub=SCRUB)
    assert (4, 1) == (result.accepted, result.rejected)
    in_span, alone = result.records
    assert (TRACE.hex(), ROOT.hex(), "otel.logs", "log", "ERROR") == (
        w3c_trace_id(in_span.trace_id),
        in_span.parent_id,
        in_span.name,
        in_span.kind,
        in_span.level,
    )
    assert [
        ("INFO", "shop.orders", "charging card"),
        ("ERROR", "shop.orders", "payment failed"),
    ] == [(event.level, event.logger, event.message) for event in in_span.events]
    assert (None, ["WARNING", "INFO"], ['{"n": 1}', "all-zero ids: no trace"]) == (
        alone.parent_id,
        [event.level for event in alone.events],
        [event.message for event in alone.events],
    )


def native_spans() -> list[FinishedSpan]:
    """Real span-tree records: tags, attributes, events, a handled and a failing error."""
    span_tree.configure(
        console=False, jsonl=False, store=None, sinks=[], tags={"env": "prod", "team": "pay"}
    )
    log = logging.getLogger("shop.orders")
    with capture_spans() as spans, span_tree.span("checkout", cart=[1, 2], ratio=0.5):
        log.warning("slow path %d", 3, extra={"attempt": 2})
        try:
            raise KeyError("k")
        except KeyError:
            log.exception("lookup failed")
        try:
            with span_tree.span("charge", kind="client") as charge:
                charge.add_ref("ref-1", outgoing=True)
                raise ValueError("card 42 declined")
        except ValueError:
            pass
    return list(spans)


def round_trip(spans: list[FinishedSpan]) -> list[FinishedSpan]:
    """span-tree -> OTLP protobuf bytes -> span-tree."""
    data = export_request(spans).SerializeToString()
    request = trace_service_pb2.ExportTraceServiceRequest.FromString(data)
    result = records_from_traces(request, namespace=spans[0].namespace, scrub=SCRUB)
    assert 0 == result.rejected
    assert result == mapped_columns(request, spans[0].namespace)
    return list(result.records)


def test_native_spans_round_trip_through_otlp_unchanged() -> None:
    """span-tree records -> OTLP -> records gives every column back, KSUID included."""
    spans = native_spans()
    assert sorted(spans) == sorted(round_trip(spans))


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(min_size=1, max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(attributes=st.dictionaries(st.from_regex(r"[a-z]{1,8}", fullmatch=True), json_values))
def test_attributes_round_trip(attributes: dict[str, Any]) -> None:
    """Any JSON attribute value (nested lists/maps, None, int64 range) survives OTLP both ways."""
    span_tree.configure(console=False, jsonl=False, store=None, sinks=[])  # both sides scrub alike
    with capture_spans() as spans, span_tree.span("s") as live:
        live.set_attributes(**attributes)
    assert [dict(spans[0].attributes)] == [dict(r.attributes) for r in round_trip(list(spans))]


def test_import_span_tree_loads_no_opentelemetry() -> None:
    """`import span_tree` plus a span loads neither opentelemetry nor protobuf."""
    code = (
        "import json, sys, span_tree\n"
        "with span_tree.span('probe'): pass\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    env = {"PATH": "/usr/bin:/bin", "SPANTREE_STORE": "none", "SPANTREE_JSONL": "0"}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, env=env
    )
    loaded = set(json.loads(result.stdout.splitlines()[-1]))
    assert set() == loaded & {"opentelemetry", "google"}


async def test_receiver_without_the_extra_answers_501_naming_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Without opentelemetry-proto the OTLP routes say which extra to install; /v1/spans works."""
    import httpx

    from span_tree.otel import _proto
    from span_tree.receiver import create_app, key_store

    def missing(name: str) -> Any:
        raise _proto.OtelNotInstalled(f"{_proto.INSTALL_HINT} (No module named {name!r})")

    monkeypatch.setattr(_proto, "_import", missing)
    key = key_store(str(tmp_path)).create("team")
    transport = httpx.ASGITransport(app=create_app(str(tmp_path)))
    async with httpx.AsyncClient(transport=transport, base_url="http://receiver") as client:
        response = await client.post(
            "/v1/traces",
            content=b"",
            headers={"X-API-Key": key, "Content-Type": "application/x-protobuf"},
        )
        native = await client.post("/v1/spans", json={"spans": []}, headers={"X-API-Key": key})
    assert (501, True) == (response.status_code, "span-tree[otel]" in response.text)
    assert 202 == native.status_code


def test_secret_looking_text_from_otel_is_scrubbed() -> None:
    """Secrets in foreign attribute values, names, events and error messages are not stored."""
    events = [
        ("connecting to postgres://app:pg-hunter2@db:5432/main", 10, {}),
        (
            "exception",
            20,
            {"exception.type": "DbError", "exception.message": "dsn password=libpq-secret"},
        ),
    ]
    request = request_with(
        {
            "name": "GET /login?token=abc123secret",
            "attributes": {"db.url": "postgres://app:pg-hunter2@db/main", "nested": {"pw": "x"}},
            "events": events,
        }
    )
    (record,) = mapped(request).records
    stored = repr(record)
    assert [] == [
        secret for secret in ("pg-hunter2", "libpq-secret", "abc123secret") if secret in stored
    ]


def test_texts_repeated_across_spans_are_each_cleaned_alike() -> None:
    """A request's repeated names, values and event texts are scrubbed in every span, and a
    sensitive key is scrubbed whatever its value (each text is cleaned once per request)."""
    fields = {
        "name": "GET /login?token=abc123secret",
        "attributes": {"db.url": "postgres://app:pg-hunter2@db/main", "password": "plain"},
        "events": [("dsn password=libpq-secret", 10, {"note": "password=libpq-secret"})],
    }
    request = request_with(fields, {**fields, "span_id": CHILD}, {**fields, "span_id": CHILD[::-1]})
    records = mapped(request).records
    assert 3 == len(records)
    assert 1 == len({(r.name, repr(r.attributes), repr(r.events)) for r in records})
    assert SCRUBBED == records[2].attributes["password"]
    assert [] == [s for s in ("pg-hunter2", "libpq-secret", "abc123secret") if s in repr(records)]


@pytest.mark.parametrize("path", ["records", "columns"])
def test_scrub_callback_sees_every_occurrence_of_a_repeated_text(path: str) -> None:
    """With a scrub callback, a text repeated in a request is offered once per occurrence,
    with its own path (no per-request cache of the answer), on either mapping path."""
    from span_tree._sanitize import Scrubber

    seen: list[tuple[Any, ...]] = []

    def keep(match: Any) -> Any:
        seen.append(tuple(match.path))
        return None

    scrub = Scrubber(SCRUB, values=True, callback=keep)
    fields = {"attributes": {"db.url": "postgres://app:pg-hunter2@db/main"}}
    request = request_with(fields, {**fields, "span_id": CHILD})
    convert = records_from_traces if path == "records" else mapped_columns_of
    records = convert(request, namespace="team", scrub=scrub).records
    assert [("db.url",), ("db.url",)] == seen
    assert ["pg-hunter2" in repr(r.attributes) for r in records] == [False, False]


def test_too_many_attributes_keep_the_first_thousand_and_say_how_many_more() -> None:
    """A span or event with more than 1,000 attributes keeps the first 1,000 and the count
    of the others (``_truncated_attributes``), on the cached path as on clean_attributes."""
    many = {f"key{index:04d}": index for index in range(1005)}
    request = request_with({"attributes": many, "events": [("step", 10, many)]})
    (record,) = mapped(request).records
    kept = {f"key{index:04d}": index for index in range(1000)}
    # The span's also has the scope's name and version (added after its own): 7 more.
    assert ({**kept, "_truncated_attributes": 7}, {**kept, "_truncated_attributes": 5}) == (
        dict(record.attributes),
        dict(record.events[0].attributes),
    )


def mapped_columns_of(request: Any, *, namespace: str, scrub: Any) -> Mapped:
    """``mapped_columns`` with ``records_from_traces``'s signature."""
    return mapped_columns(request, namespace, scrub)


def mostly(usual: Any, *others: Any) -> Any:
    """The usual value three times in four, else one of the others."""
    return st.one_of(st.just(usual), st.just(usual), st.just(usual), st.sampled_from(others))


span_forms = st.fixed_dictionaries(
    {
        "span_id": mostly(CHILD, ROOT, b"", bytes(8), b"\x01" * 7),
        "parent_span_id": st.sampled_from([b"", bytes(8), ROOT, b"\x02" * 9]),
        "start_time_unix_nano": mostly(T0, 0, 2**63 - 1),
        "end_time_unix_nano": mostly(T0 + 5_000_000, T0 - 1),
        "kind": st.integers(0, 7),
        "attributes": mostly(
            {"a": 1}, {}, {"code.lineno": 12, "thread.name": "w"}, {"spantree.seq": 3}
        ),
        "events": st.lists(
            mostly(
                ("fetched", 10, {"level": "INFO"}),
                ("fetched", 10, {}),
                ("log", 20, {"spantree.level": "WARNING", "spantree.logger": "app"}),
                ("exception", 30, {"exception.type": "E", "exception.escaped": True}),
            ),
            max_size=3,
        ),
        "status": mostly(None, (0, ""), (2, "boom")),
    }
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    forms=st.lists(span_forms, min_size=1, max_size=6),
    more=st.lists(span_forms, max_size=3),
)
def test_receiver_columns_are_the_records_of_any_span_mix(
    forms: list[dict[str, Any]], more: list[dict[str, Any]]
) -> None:
    """The receiver's column path gives records_from_traces's records, counts and reasons
    for any mix of foreign, span-tree, failed and bad spans in one request (one resource,
    or two)."""
    request = request_with(*forms)
    if more:
        request.MergeFrom(request_with(*more, resource={"service.name": "other"}))
    assert records_from_traces(request, namespace="team", scrub=SCRUB) == mapped_columns(
        request, "team"
    )


def test_two_resources_of_plain_spans_with_events_map_alike() -> None:
    """Plain spans with events under two resources (two column parts joined) give the same
    records on the receiver's column path as records_from_traces."""
    fields = {"attributes": {"a": 1}, "events": [("fetched", 10, {"rows": 3}), ("done", 20, {})]}
    request = request_with(fields, {**fields, "span_id": CHILD, "events": []})
    request.MergeFrom(request_with({**fields, "name": "other"}, resource={"service.name": "b"}))
    assert 3 == len(mapped(request).records)


def test_a_span_keeps_its_own_scope_attributes() -> None:
    """A span that sets otel.scope.name itself keeps its value; the scope's version is
    still added, and its neighbours get the scope's name (both mapping paths)."""
    own = {"attributes": {"otel.scope.name": "mine", "a": 1}}
    request = request_with(own, {"span_id": CHILD, "attributes": {"a": 2}})
    first, second = mapped(request).records
    assert {"otel.scope.name": "mine", "a": 1, "otel.scope.version": "0.1"} == dict(
        first.attributes
    )
    assert "shop.instrumentation" == second.attributes["otel.scope.name"]
