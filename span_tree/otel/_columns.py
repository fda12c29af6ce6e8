"""OTLP traces -> the writer's span columns: the receiver's path for ``POST /v1/traces``.

``records_from_traces`` makes one ``FinishedSpan`` per span (what sinks take). The
receiver only needs the Parquet writer's columns, so no record is made here:

- a ``ScopeSpans`` whose spans are all plain spans of another tracer (the usual request:
  no span-tree attributes, not failed, no exception events, valid ids and times, no
  scrub callback) is read field by field for all its spans at once: ids checked and
  hexed with C-level set and map calls, each trace id and span name converted once,
  resource values repeated as one object, attributes cleaned as they are read; its
  events become the Arrow events column directly when it is the request's only part;
- any other ``ScopeSpans`` is mapped span by span (``_plain_row`` inline, else
  ``map_span`` itself, which also names a rejected span's bad field), and its rows are
  transposed once.

Both give ``records_from_traces``'s values: a test pins the columns against its records,
field by field, for any mix of spans.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import accumulate, chain, islice, repeat
from operator import sub
from typing import Any, NamedTuple

import pyarrow as pa

from span_tree._record import SCHEMA_VERSION, SPAN_COLUMNS, STATUS_SUCCEEDED, Event, utc_day
from span_tree._sanitize import scrubber
from span_tree.otel._mapping import (
    _EVENT_RESERVED,
    _MAX_ATTRIBUTES,
    _SPAN_RESERVED,
    _ZERO_SPAN,
    EXCEPTION_EVENT,
    KIND_NAMES,
    MAX_TIME_NS,
    MIN_TIME_NS,
    OWN_SCOPE,
    SCOPE_NAME,
    SCOPE_VERSION,
    STATUS_CODE_ERROR,
    Rejected,
    Resource,
    Scrub,
    TraceIds,
    _at_most_attributes,
    _new_event,
    _note,
    _Texts,
    key_values,
    map_resource,
    map_span,
    rejection_message,
)
from span_tree.storage.schema import SPAN_SCHEMA, _json_array

_DAY_US = 86_400_000_000
_DATE = SPAN_COLUMNS.index("date")
_START = SPAN_COLUMNS.index("start_time")


class MappedColumns(NamedTuple):
    """The spans of one OTLP request as columns, and what was refused (partial success)."""

    # One per SPAN_COLUMNS entry (empty when no span is kept), holding record values;
    # events may be an Arrow array of its SPAN_SCHEMA type (python_columns reads it back).
    columns: list[Sequence[Any]]
    accepted: int
    rejected: int
    reasons: list[str]

    def message(self) -> str:
        """The partial-success ``error_message`` ("" when nothing was rejected)."""
        return rejection_message(self.rejected, self.reasons)


def columns_from_traces(request: Any, *, namespace: str, scrub: Scrub) -> MappedColumns:
    """``records_from_traces`` as columns (``SPAN_COLUMNS`` order, record values).

    Bad spans are rejected one by one, with the same reasons.
    """
    parts: list[list[Sequence[Any]]] = []
    rows: list[tuple[Any, ...]] = []
    rejected = 0
    reasons: list[str] = []
    trace_ids = TraceIds()
    active = scrubber(scrub)  # once per request: it caches verdicts on keys and short texts
    texts = _Texts(active)
    for resource_spans in request.resource_spans:
        resource = map_resource(key_values(resource_spans.resource.attributes), active)
        for scope_spans in resource_spans.scope_spans:
            scope = (scope_spans.scope.name, scope_spans.scope.version)
            added = _scope_attributes(scope, texts)
            spans = list(scope_spans.spans)
            columns = _plain_columns(spans, resource, added, namespace, trace_ids, texts)
            if columns is not None:
                if rows:
                    parts.append(list(zip(*rows, strict=True)))
                    rows = []
                parts.append(columns)
                continue
            for span in spans:
                row = _plain_row(span, resource, added, namespace, trace_ids, texts)
                if row is None:
                    try:
                        row = map_span(
                            span,
                            resource,
                            scope,
                            namespace=namespace,
                            trace_ids=trace_ids,
                            scrub=active,
                            texts=texts,
                        )
                    except Rejected as error:
                        rejected += 1
                        _note(reasons, str(error))
                        continue
                rows.append(row)
    if rows:
        parts.append(list(zip(*rows, strict=True)))
    if not parts:
        return MappedColumns([], 0, rejected, reasons)
    if len(parts) == 1:  # the usual request: one resource, one scope
        columns = parts[0]
        events = columns[_EVENTS_COLUMN]
        if isinstance(events, _FlatEvents):
            columns[_EVENTS_COLUMN] = events.array()
    else:
        for part in parts:
            events = part[_EVENTS_COLUMN]
            if isinstance(events, _FlatEvents):
                part[_EVENTS_COLUMN] = events.tuples()
        columns = [list(chain.from_iterable(part[index] for part in parts)) for index in _INDICES]
    columns[_DATE] = _dates(columns[_START])
    return MappedColumns(columns, len(columns[_START]), rejected, reasons)


_INDICES = range(len(SPAN_COLUMNS))
_EVENTS_COLUMN = SPAN_COLUMNS.index("events")
_EVENTS = SPAN_SCHEMA.field("events").type


def _plain_columns(
    spans: list[Any],
    resource: Resource,
    scope_attributes: dict[str, str],
    namespace: str,
    trace_ids: TraceIds,
    texts: _Texts,
) -> list[Sequence[Any]] | None:
    """The spans of one ``ScopeSpans`` as columns, read field by field for all of them
    (C-level checks and conversions), when every one is a plain span of another tracer
    (what ``_plain_row`` takes) and there is no scrub callback; else ``None``."""
    if not spans or not texts.cached:
        return None
    count = len(spans)
    span_ids = [span.span_id for span in spans]
    parents = [span.parent_span_id for span in spans]
    starts_ns = [span.start_time_unix_nano for span in spans]
    ends_ns = [span.end_time_unix_nano for span in spans]
    if (
        set(map(len, span_ids)) != {8}
        or _ZERO_SPAN in span_ids
        or not set(map(len, parents)) <= {0, 8}
        or min(starts_ns) < MIN_TIME_NS
        or max(starts_ns) >= MAX_TIME_NS
        or min(ends_ns) < MIN_TIME_NS
        or max(ends_ns) >= MAX_TIME_NS
        or STATUS_CODE_ERROR in [span.status.code for span in spans]
    ):
        return None
    starts = [nanos // 1000 for nanos in starts_ns]
    ends = [nanos // 1000 for nanos in ends_ns]
    durations = list(map(sub, ends, starts))
    if min(durations) < 0:
        return None
    read = texts.key_values
    attributes = [read(span.attributes) for span in spans]
    if not _SPAN_RESERVED.isdisjoint(chain.from_iterable(attributes)):
        return None
    events = _plain_events(spans, texts)
    if events is None:
        return None
    try:
        ksuid = trace_ids.ksuid
        raw_traces = [span.trace_id for span in spans]
        states = [span.trace_state for span in spans]
        if any(states):
            trace_column = list(map(ksuid, raw_traces, states))
        else:  # the usual request: each trace's id converted once
            found = {raw: ksuid(raw) for raw in set(raw_traces)}
            trace_column = list(map(found.__getitem__, raw_traces))
        span_links = [span.links for span in spans]
        links: list[tuple[str, ...]] = [()] * count
        if any(span_links):
            links = [
                tuple(ksuid(link.trace_id, link.trace_state) for link in items) if items else ()
                for items in span_links
            ]
    except Rejected:
        return None  # map_span names the first bad field
    if scope_attributes:
        if scope_attributes.keys().isdisjoint(chain.from_iterable(attributes)):
            for values in attributes:
                values.update(scope_attributes)
        else:  # a span with its own scope name or version keeps it
            for values in attributes:
                for key, value in scope_attributes.items():
                    values.setdefault(key, value)
    if max(map(len, attributes)) > _MAX_ATTRIBUTES:
        attributes = list(map(_at_most_attributes, attributes))
    names = [span.name for span in spans]
    cleaned = {name: texts.name(name) or "<unnamed>" for name in set(names)}
    kinds = [span.kind for span in spans]
    nothing = [None] * count
    return [
        [namespace] * count,
        nothing,  # the date: one computation for the request (_dates)
        trace_column,
        list(map(bytes.hex, span_ids)),
        [raw.hex() if raw and raw != _ZERO_SPAN else None for raw in parents],
        starts,  # seq: the start time, as map_span sets it for a foreign span
        list(map(cleaned.__getitem__, names)),
        list(map(KIND_NAMES.get, kinds, repeat("internal", count))),
        [STATUS_SUCCEEDED] * count,
        ["INFO"] * count,
        starts,
        ends,
        durations,
        nothing,
        nothing,
        nothing,
        [resource.app] * count,
        [resource.app_version] * count,
        [resource.host] * count,
        [resource.pid] * count,
        [""] * count,
        nothing,
        [resource.tags] * count,
        attributes,
        nothing,
        nothing,
        nothing,
        [()] * count,
        events,
        links,
        [()] * count,
        [()] * count,
        nothing,
        [SCHEMA_VERSION] * count,
    ]


class _FlatEvents(NamedTuple):
    """The plain events of one ``ScopeSpans``, flat (each INFO, no logger, file or line,
    seq = time: what ``map_span`` makes of another tracer's event)."""

    counts: list[int]  # events per span
    times: list[int]
    messages: list[str]
    attributes: list[dict[str, Any]]

    def tuples(self) -> list[tuple[Event, ...]]:
        """Each span's events as records."""
        made = iter(
            [
                _new_event((time, time, "INFO", "", message, None, None, values))
                for time, message, values in zip(
                    self.times, self.messages, self.attributes, strict=True
                )
            ]
        )
        return [tuple(islice(made, count)) if count else () for count in self.counts]

    def array(self) -> pa.Array:
        """The events column as Arrow (``SPAN_SCHEMA``'s type), without a record per event."""
        count = len(self.times)
        struct_type = _EVENTS.value_type
        children = [
            pa.array(self.times, struct_type.field("time").type),
            pa.array(self.times, pa.int64()),
            pa.repeat(pa.scalar("INFO", pa.string()), count),
            pa.repeat(pa.scalar("", pa.string()), count),
            pa.array(self.messages, pa.string()),
            pa.nulls(count, pa.string()),
            pa.nulls(count, pa.int32()),
            _json_array(self.attributes),
        ]
        structs = pa.StructArray.from_arrays(children, fields=list(struct_type))
        offsets = pa.array(list(accumulate(self.counts, initial=0)), pa.int32())
        return pa.ListArray.from_arrays(offsets, structs, type=_EVENTS)


def _plain_events(spans: list[Any], texts: _Texts) -> _FlatEvents | None:
    """The spans' events, when all are plain events of another tracer (cached path)."""
    read = texts.key_values
    messages = texts.messages
    events = _FlatEvents([], [], [], [])
    counts = events.counts
    times = events.times
    texts_of = events.messages
    attributes = events.attributes
    for span in spans:
        span_events = span.events
        if not span_events:
            counts.append(0)
            continue
        counts.append(len(span_events))
        for item in span_events:
            name = item.name
            time_ns = item.time_unix_nano
            if name == EXCEPTION_EVENT or not MIN_TIME_NS <= time_ns < MAX_TIME_NS:
                return None
            values = read(item.attributes)
            if not _EVENT_RESERVED.isdisjoint(values):
                return None
            if len(values) > _MAX_ATTRIBUTES:
                values = _at_most_attributes(values)
            message = messages.get(name)
            if message is None:
                message = texts.message(name)
            times.append(time_ns // 1000)
            texts_of.append(message)
            attributes.append(values)
    return events


def _dates(starts: Sequence[int]) -> list[str]:
    """The partition date of each start (one computation when all share a day)."""
    first, last = min(starts), max(starts)
    if first // _DAY_US == last // _DAY_US:
        return [utc_day(first)] * len(starts)
    return [utc_day(start) for start in starts]


def _scope_attributes(scope: tuple[str, str], texts: _Texts) -> dict[str, str]:
    """What ``map_span`` adds to the attributes of a span of this scope (unless the span
    has its own), already cleaned on the cached path."""
    added: dict[str, str] = {}
    if scope[0] and scope[0] != OWN_SCOPE:
        added[SCOPE_NAME] = scope[0]
        if scope[1]:
            added[SCOPE_VERSION] = scope[1]
    return texts.attributes(added) if added and texts.cached else added


def _plain_row(
    span: Any,
    resource: Resource,
    scope_attributes: dict[str, str],
    namespace: str,
    trace_ids: TraceIds,
    texts: _Texts,
) -> tuple[Any, ...] | None:
    """``map_span`` of a span of another tracer, inline; ``None`` for any other span.

    On the cached path (no scrub callback) attributes are cleaned as they are read (one
    pass); otherwise everything that could send the span to ``map_span`` is checked
    before a text is cleaned, so the callback sees each occurrence once.
    """
    raw_span = span.span_id
    raw_parent = span.parent_span_id
    start_ns = span.start_time_unix_nano
    end_ns = span.end_time_unix_nano
    if not (
        len(raw_span) == 8
        and raw_span != _ZERO_SPAN
        and (len(raw_parent) == 8 or not raw_parent)
        and MIN_TIME_NS <= start_ns < MAX_TIME_NS
        and MIN_TIME_NS <= end_ns < MAX_TIME_NS
        and span.status.code != STATUS_CODE_ERROR
    ):
        return None
    start = start_ns // 1000
    end = end_ns // 1000
    if end < start:
        return None
    cached = texts.cached
    read = texts.key_values if cached else key_values
    attributes = read(span.attributes)
    if not _SPAN_RESERVED.isdisjoint(attributes):
        return None
    raw_events = []
    span_events = span.events
    for item in span_events if span_events else ():
        event_name = item.name
        time_ns = item.time_unix_nano
        if event_name == EXCEPTION_EVENT or not MIN_TIME_NS <= time_ns < MAX_TIME_NS:
            return None
        event_attributes = read(item.attributes)
        if not _EVENT_RESERVED.isdisjoint(event_attributes):
            return None
        raw_events.append((time_ns // 1000, event_name, event_attributes))
    try:
        trace_id = trace_ids.ksuid(span.trace_id, span.trace_state)
        span_links = span.links
        links = (
            tuple(trace_ids.ksuid(link.trace_id, link.trace_state) for link in span_links)
            if span_links
            else ()
        )
    except Rejected:
        return None  # map_span names the first bad field
    finish = _at_most_attributes if cached else texts.attributes
    events: tuple[Event, ...] = ()
    if raw_events:
        message = texts.message
        events = tuple(
            _new_event((time, time, "INFO", "", message(name), None, None, finish(values)))
            if values
            else _new_event((time, time, "INFO", "", message(name), None, None, {}))
            for time, name, values in raw_events
        )
    for key, value in scope_attributes.items():
        attributes.setdefault(key, value)
    return (
        namespace,
        None,  # the date: one computation for the request (_dates)
        trace_id,
        raw_span.hex(),
        raw_parent.hex() if raw_parent and raw_parent != _ZERO_SPAN else None,
        start,
        texts.name(span.name) or "<unnamed>",
        KIND_NAMES.get(span.kind, "internal"),
        STATUS_SUCCEEDED,
        "INFO",
        start,
        end,
        end - start,
        None,
        None,
        None,
        resource.app,
        resource.app_version,
        resource.host,
        resource.pid,
        "",
        None,
        resource.tags,
        finish(attributes) if attributes else {},
        None,
        None,
        None,
        (),
        events,
        links,
        (),
        (),
        None,
        SCHEMA_VERSION,
    )
