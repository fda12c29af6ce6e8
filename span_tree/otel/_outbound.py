"""span-tree records -> OTLP: the outbound half of the one OTel mapping.

The inverse of ``_mapping.py`` (a round-trip test pins ``inbound(outbound(r)) == r``):
app/app_version/host/pid and the trace's tags become the resource, the KSUID's payload
the trace id (with ``spantree=<KSUID>`` in the trace state, so a span-tree receiver keeps
the exact KSUID), events span events (``spantree.level``/``spantree.logger``/
``spantree.seq`` attributes), handled errors and the exit error ``exception`` events, and
the columns OTel has no field for ``code.*``, ``thread.name`` and ``spantree.*``
attributes. ``started`` snapshots are not sent: an OTLP span is always a finished one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from span_tree._ids import is_trace_id, w3c_trace_id
from span_tree._record import STATUS_FAILED, STATUS_STARTED, FinishedSpan
from span_tree.otel import _proto
from span_tree.otel._mapping import (
    EVENT_LEVEL,
    EVENT_LOGGER,
    EXCEPTION_EVENT,
    FILE_KEYS,
    FUNCTION_KEYS,
    HOST_NAME,
    KIND_CODES,
    LINE_KEYS,
    OWN_SCOPE,
    PROCESS_PID,
    REF_DEST,
    REF_SRC,
    SEQ,
    SERVICE_NAME,
    SERVICE_VERSION,
    STATUS_CODE_ERROR,
    TASK,
    THREAD_NAME,
    TRACESTATE_VENDOR,
)

_INT64 = (-(2**63), 2**63 - 1)


def set_any_value(target: Any, value: Any) -> None:
    """Fill an OTLP ``AnyValue`` from JSON-able data (None leaves it empty)."""
    if value is None:
        return
    if isinstance(value, bool):
        target.bool_value = value
    elif isinstance(value, int):
        if _INT64[0] <= value <= _INT64[1]:
            target.int_value = value
        else:
            target.string_value = str(value)
    elif isinstance(value, float):
        target.double_value = value
    elif isinstance(value, str):
        target.string_value = value
    elif isinstance(value, Mapping):
        kvlist = target.kvlist_value
        kvlist.SetInParent()
        for key, item in value.items():
            entry = kvlist.values.add()
            entry.key = str(key)
            set_any_value(entry.value, item)
    elif isinstance(value, list | tuple):
        array = target.array_value
        array.SetInParent()
        for item in value:
            set_any_value(array.values.add(), item)
    elif isinstance(value, bytes):
        target.bytes_value = value
    else:
        target.string_value = repr(value)


def add_attributes(target: Any, attributes: Iterable[tuple[str, Any]]) -> None:
    """Append ``KeyValue`` entries to a repeated ``attributes`` field."""
    for key, value in attributes:
        entry = target.add()
        entry.key = key
        set_any_value(entry.value, value)


def _trace_bytes(trace_id: str) -> bytes:
    return bytes.fromhex(w3c_trace_id(trace_id)) if is_trace_id(trace_id) else b""


def _resource_key(span: FinishedSpan) -> tuple[Any, ...]:
    return (span.app, span.app_version, span.host, span.pid, tuple(sorted(span.tags.items())))


def _resource_attributes(span: FinishedSpan) -> list[tuple[str, Any]]:
    items: list[tuple[str, Any]] = [(SERVICE_NAME, span.app or "unknown_service")]
    if span.app_version:
        items.append((SERVICE_VERSION, span.app_version))
    if span.host:
        items.append((HOST_NAME, span.host))
    if span.pid:
        items.append((PROCESS_PID, span.pid))
    for key, value in span.tags.items():
        items.append(("deployment.environment.name" if key == "env" else key, value))
    return items


def _span_attributes(span: FinishedSpan) -> list[tuple[str, Any]]:
    items = list(span.attributes.items())
    items.append((SEQ, span.seq))
    if span.file is not None:
        items.append((FILE_KEYS[0], span.file))
    if span.line is not None:
        items.append((LINE_KEYS[0], span.line))
    if span.function is not None:
        items.append((FUNCTION_KEYS[0], span.function))
    if span.thread:
        items.append((THREAD_NAME, span.thread))
    if span.task is not None:
        items.append((TASK, span.task))
    if span.ref_src:
        items.append((REF_SRC, list(span.ref_src)))
    if span.ref_dest:
        items.append((REF_DEST, list(span.ref_dest)))
    return items


def _fill_span(target: Any, span: FinishedSpan) -> None:
    target.trace_id = _trace_bytes(span.trace_id)
    target.span_id = bytes.fromhex(span.span_id)
    if span.parent_id:
        target.parent_span_id = bytes.fromhex(span.parent_id)
    if is_trace_id(span.trace_id):
        target.trace_state = f"{TRACESTATE_VENDOR}={span.trace_id}"
    target.name = span.name
    target.kind = KIND_CODES.get(span.kind, KIND_CODES["internal"])
    target.start_time_unix_nano = span.start_time * 1000
    end = span.end_time if span.end_time is not None else span.start_time
    target.end_time_unix_nano = end * 1000
    add_attributes(target.attributes, _span_attributes(span))
    for event in span.events:
        item = target.events.add()
        item.time_unix_nano = event.time * 1000
        item.name = event.message
        extra: list[tuple[str, Any]] = [(SEQ, event.seq), (EVENT_LEVEL, event.level)]
        if event.logger:
            extra.append((EVENT_LOGGER, event.logger))
        if event.file is not None:
            extra.append((FILE_KEYS[0], event.file))
        if event.line is not None:
            extra.append((LINE_KEYS[0], event.line))
        add_attributes(item.attributes, [*event.attributes.items(), *extra])
    for error in span.handled_errors:
        _add_exception(target, error.time, error.type, error.message, error.traceback, False)
    if span.status == STATUS_FAILED:
        target.status.code = STATUS_CODE_ERROR
        target.status.message = span.error_message or ""
        _add_exception(
            target,
            end,
            span.error_type or "",
            span.error_message or "",
            span.error_traceback or "",
            True,
        )
    for linked in span.links:
        if is_trace_id(linked):
            link = target.links.add()
            link.trace_id = _trace_bytes(linked)
            # span-tree links name a trace, not a span: the link points at an id no
            # span has, which OTLP allows (backends show the trace).
            link.span_id = b"\x00" * 7 + b"\x01"
            link.trace_state = f"{TRACESTATE_VENDOR}={linked}"


def _add_exception(
    target: Any, time: int, kind: str, message: str, traceback: str, escaped: bool
) -> None:
    event = target.events.add()
    event.time_unix_nano = time * 1000
    event.name = EXCEPTION_EVENT
    add_attributes(
        event.attributes,
        [
            ("exception.type", kind),
            ("exception.message", message),
            ("exception.stacktrace", traceback),
            ("exception.escaped", escaped),
        ],
    )


def export_request(spans: Sequence[FinishedSpan], *, scope_version: str = "") -> Any:
    """An ``ExportTraceServiceRequest`` of the finished spans in ``spans``.

    ``started`` snapshots are left out (OTLP has no unfinished span).
    """
    service = _proto.trace_service_pb2()
    request = service.ExportTraceServiceRequest()
    scopes: dict[tuple[Any, ...], Any] = {}
    for span in spans:
        if span.status == STATUS_STARTED:
            continue
        key = _resource_key(span)
        scope_spans = scopes.get(key)
        if scope_spans is None:
            resource_spans = request.resource_spans.add()
            add_attributes(resource_spans.resource.attributes, _resource_attributes(span))
            scope_spans = resource_spans.scope_spans.add()
            scope_spans.scope.name = OWN_SCOPE
            scope_spans.scope.version = scope_version
            scopes[key] = scope_spans
        _fill_span(scope_spans.spans.add(), span)
    return request
