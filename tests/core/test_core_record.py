"""The JSON form of a span record: round trip (property-based) and clear errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from span_tree._record import (
    Event,
    FinishedSpan,
    HandledError,
    SpanRecordError,
    iso_from_us,
    span_from_json_dict,
    span_to_json,
)

# 2000-01-01 .. 2100-01-01 in microseconds.
MICROS = st.integers(min_value=946_684_800_000_000, max_value=4_102_444_800_000_000)
TEXT = st.text(max_size=20)
NAME = st.text(min_size=1, max_size=20)
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(TEXT, children, max_size=3),
    max_leaves=8,
)
ATTRIBUTES = st.dictionaries(TEXT, JSON_VALUES, max_size=4)


@st.composite
def records(draw: st.DrawFn) -> FinishedSpan:
    """Any valid span record (finished or a `started` snapshot)."""
    start = draw(MICROS)
    finished = draw(st.booleans())
    end = start + draw(st.integers(0, 10**9)) if finished else None
    status = draw(st.sampled_from(["succeeded", "failed"])) if finished else "started"
    events = tuple(
        Event(
            draw(MICROS),
            draw(st.integers(1, 10**6)),
            draw(st.sampled_from(["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"])),
            draw(TEXT),
            draw(TEXT),
            draw(st.none() | TEXT),
            draw(st.none() | st.integers(1, 10**6)),
            draw(ATTRIBUTES),
        )
        for _ in range(draw(st.integers(0, 3)))
    )
    handled = tuple(
        HandledError(draw(MICROS), draw(TEXT), draw(TEXT), draw(TEXT))
        for _ in range(draw(st.integers(0, 2)))
    )
    return FinishedSpan(
        namespace=draw(NAME),
        date=iso_from_us(start)[:10],
        trace_id=draw(NAME),
        span_id=draw(NAME),
        parent_id=draw(st.none() | NAME),
        seq=draw(st.integers(0, 10**6)),
        name=draw(NAME),
        kind=draw(NAME),
        status=status,
        level=draw(st.sampled_from(["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"])),
        start_time=start,
        end_time=end,
        duration_us=None if end is None else end - start,
        file=draw(st.none() | TEXT),
        line=draw(st.none() | st.integers(0, 10**6)),
        function=draw(st.none() | TEXT),
        app=draw(TEXT),
        app_version=draw(TEXT),
        host=draw(TEXT),
        pid=draw(st.integers(0, 2**31)),
        thread=draw(TEXT),
        task=draw(st.none() | TEXT),
        tags=draw(st.dictionaries(TEXT, TEXT, max_size=3)),
        attributes=draw(ATTRIBUTES),
        error_type=draw(st.none() | TEXT),
        error_message=draw(st.none() | TEXT),
        error_traceback=draw(st.none() | TEXT),
        handled_errors=handled,
        events=events,
        links=tuple(draw(st.lists(NAME, max_size=2))),
        ref_src=tuple(draw(st.lists(NAME, max_size=2))),
        ref_dest=tuple(draw(st.lists(NAME, max_size=2))),
        written_at=draw(st.none() | MICROS),
        schema_version=1,
    )


@settings(max_examples=150, deadline=None)
@given(records())
def test_json_line_round_trip(record: FinishedSpan) -> None:
    """Any record printed as a JSON line reads back equal."""
    assert record == span_from_json_dict(json.loads(span_to_json(record)))


def good_record() -> dict[str, Any]:
    """A minimal valid JSON span record."""
    return {
        "spantree": 1,
        "trace_id": "3MZxrG4HyP2dhn1pKKTLEgNrfiL",
        "span_id": "0123456789abcdef",
        "name": "ok",
        "status": "succeeded",
        "start_time": "2026-01-02T03:04:05.000006Z",
        "end_time": "2026-01-02T03:04:06Z",
    }


def test_minimal_record_gets_defaults() -> None:
    """A minimal record is accepted; missing fields get defaults and the duration is derived."""
    record = span_from_json_dict(good_record(), namespace="from-key")
    assert ("from-key", "2026-01-02", 999_994) == (
        record.namespace,
        record.date,
        record.duration_us,
    )
    assert ((), {}, "internal") == (record.events, dict(record.attributes), record.kind)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"trace_id": ""}, "trace_id"),
        ({"name": 3}, "name"),
        ({"status": "done"}, "status"),
        ({"start_time": None}, "start_time"),
        ({"start_time": "yesterday"}, "start_time"),
        ({"end_time": [1]}, "end_time"),
        ({"duration_us": "5"}, "duration_us"),
        ({"line": True}, "line"),
        ({"attributes": "{not json"}, "attributes"),
        ({"attributes": [1]}, "attributes"),
        ({"links": ["a", 1]}, "links"),
        ({"events": {"x": 1}}, "events"),
        ({"events": [{"time": "bad"}]}, "events[0].time"),
        ({"events": [{"time": "2026-01-01T00:00:00Z", "seq": "x"}]}, "events[0].seq"),
        ({"handled_errors": [3]}, "handled_errors[0]"),
    ],
)
def test_malformed_record_names_the_field(change: dict[str, Any], field: str) -> None:
    """A malformed record raises SpanRecordError naming the offending field."""
    with pytest.raises(SpanRecordError) as raised:
        span_from_json_dict({**good_record(), **change})
    assert field == raised.value.field


def test_non_object_record_is_rejected() -> None:
    """A JSON value that is not an object is a SpanRecordError."""
    with pytest.raises(SpanRecordError, match="object"):
        span_from_json_dict([1, 2])  # type: ignore[arg-type]
