"""The frozen span record every sink receives, and its JSON form.

``FinishedSpan`` is a ``NamedTuple``: frozen, slotted (no per-instance ``__dict__``) and
built in one C call from the live span, which keeps the recording path cheap. Its fields
are exactly the span columns of the store's Arrow schema
(``span_tree.storage.schema.SPAN_SCHEMA``, pinned by a test), in column order.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from datetime import datetime

SCHEMA_VERSION = 1

STATUS_STARTED = "started"
STATUS_SUCCEEDED = "succeeded"
STATUS_FAILED = "failed"

# Marker key of a span line printed by the jsonl sink, so `spantree ingest` can tell
# span lines from other log lines in a collected log stream.
JSON_MARKER = "spantree"


class Event(NamedTuple):
    """A log record emitted inside a span.

    ``seq`` is the trace-wide causal sequence number shared with span starts, so a
    renderer can interleave events and child spans exactly as they happened.
    """

    time: int  # microseconds since the Unix epoch, UTC
    seq: int
    level: str
    logger: str
    message: str
    file: str | None
    line: int | None
    attributes: Mapping[str, Any]


class HandledError(NamedTuple):
    """An exception caught and logged (``logger.exception``) inside a span."""

    time: int  # microseconds since the Unix epoch, UTC
    type: str
    message: str
    traceback: str


class FinishedSpan(NamedTuple):
    """One version of a span, as handed to sinks and written as one Parquet row.

    Times are integers in microseconds since the Unix epoch (UTC); sinks convert them.
    ``status == "started"`` rows are published for spans still running when their
    trace's root ended; the finished version follows later with the same ``span_id``.
    """

    namespace: str
    date: str  # YYYY-MM-DD of start_time, UTC (the partition)
    trace_id: str
    span_id: str
    parent_id: str | None
    seq: int  # trace-wide causal order of the span's start (see Event.seq)
    name: str
    kind: str
    status: str
    level: str
    start_time: int
    end_time: int | None
    duration_us: int | None
    file: str | None
    line: int | None
    function: str | None
    app: str
    app_version: str
    host: str
    pid: int
    thread: str
    task: str | None
    tags: Mapping[str, str]
    attributes: Mapping[str, Any]
    error_type: str | None
    error_message: str | None
    error_traceback: str | None
    handled_errors: tuple[HandledError, ...]
    events: tuple[Event, ...]
    links: tuple[str, ...]
    ref_src: tuple[str, ...]
    ref_dest: tuple[str, ...]
    written_at: int | None
    schema_version: int


SPAN_COLUMNS: tuple[str, ...] = FinishedSpan._fields


# ``FinishedSpan._make`` without its Python frame: a C call per record.
_new_record = functools.partial(tuple.__new__, FinishedSpan)


def records_from_columns(columns: Sequence[Sequence[Any]]) -> list[FinishedSpan]:
    """Records of spans given as columns (one sequence per ``SPAN_COLUMNS`` entry)."""
    if len(columns) != len(SPAN_COLUMNS):
        raise ValueError(f"{len(SPAN_COLUMNS)} span columns expected, not {len(columns)}")
    return list(map(_new_record, zip(*columns, strict=True)))


def columns_from_records(records: Sequence[FinishedSpan]) -> list[list[Any]]:
    """The records as columns: one list per ``SPAN_COLUMNS`` entry, in that order."""
    if not records:
        return [[] for _ in SPAN_COLUMNS]
    return [list(column) for column in zip(*records, strict=True)]


# `datetime` is imported on first use (not by `import span_tree`): these three names.
_datetime: Any = None
_UTC: Any = None
_EPOCH: Any = None


def _load_datetime() -> Any:
    global _datetime, _UTC, _EPOCH
    from datetime import UTC, datetime

    _UTC, _EPOCH = UTC, datetime(1970, 1, 1, tzinfo=UTC)
    _datetime = datetime
    return datetime


def iso_from_us(micros: int) -> str:
    """Format microseconds since the epoch as ISO 8601 UTC with a ``Z`` suffix."""
    moment = (_datetime or _load_datetime()).fromtimestamp(micros / 1e6, tz=_UTC)
    return str(moment.isoformat().replace("+00:00", "Z"))


def us_from_iso(text: str) -> int:
    """Parse an ISO 8601 timestamp (``Z`` or offset) into microseconds since the epoch."""
    moment = (_datetime or _load_datetime()).fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_UTC)
    return us_from_datetime(moment)


def us_from_datetime(moment: datetime) -> int:
    """Microseconds since the epoch of an aware datetime, exactly (no float rounding)."""
    if _EPOCH is None:
        _load_datetime()
    delta = moment - _EPOCH
    return int((delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds)


_day_cache: dict[int, str] = {}


def utc_day(micros: int) -> str:
    """The partition date of a span: the UTC day (YYYY-MM-DD) of its start, in µs.

    Cached per day: it is computed for every recorded span.
    """
    day = micros // 86_400_000_000
    text = _day_cache.get(day)
    if text is None:
        text = time.strftime("%Y-%m-%d", time.gmtime(day * 86_400))
        if len(_day_cache) > 10_000:  # arbitrary input (ingest) must not grow it forever
            _day_cache.clear()
        _day_cache[day] = text
    return text


def version_rank(span: FinishedSpan) -> tuple[bool, int]:
    """How new a version of a span is: the newest-version rule, as a sort key.

    The rule, in one place (the ``spans`` view, ``span_tree/queries/spans.sql``, is its
    SQL form): of the rows sharing a span id, a finished version beats a ``started``
    snapshot, then the newest ``written_at`` wins (a missing one is oldest).
    """
    return (span.status != STATUS_STARTED, -1 if span.written_at is None else span.written_at)


def newest_versions(records: Iterable[FinishedSpan]) -> list[FinishedSpan]:
    """One record per span (its newest version, see ``version_rank``), in first-seen order.

    Ties keep the later record, so records in write order give the last one written.
    """
    chosen: dict[tuple[str, str], FinishedSpan] = {}
    for record in records:
        key = (record.trace_id, record.span_id)
        known = chosen.get(key)
        if known is None or version_rank(record) >= version_rank(known):
            chosen[key] = record
    return list(chosen.values())


def span_to_json_dict(span: FinishedSpan) -> dict[str, Any]:
    """Return the JSON-ready dict of a span: the jsonl line and the receiver's body item."""
    record: dict[str, Any] = {JSON_MARKER: span.schema_version}
    record.update(span._asdict())
    record["start_time"] = iso_from_us(span.start_time)
    record["end_time"] = None if span.end_time is None else iso_from_us(span.end_time)
    record["written_at"] = None if span.written_at is None else iso_from_us(span.written_at)
    record["tags"] = dict(span.tags)
    record["attributes"] = dict(span.attributes)
    record["handled_errors"] = [
        {**error._asdict(), "time": iso_from_us(error.time)} for error in span.handled_errors
    ]
    record["events"] = [
        {**event._asdict(), "time": iso_from_us(event.time), "attributes": dict(event.attributes)}
        for event in span.events
    ]
    record["links"] = list(span.links)
    record["ref_src"] = list(span.ref_src)
    record["ref_dest"] = list(span.ref_dest)
    return record


def span_to_json(span: FinishedSpan) -> str:
    """Return one JSON line (no newline) for a span."""
    return json.dumps(span_to_json_dict(span), ensure_ascii=False, default=repr)


class SpanRecordError(ValueError):
    """A JSON span record is malformed; ``field`` names the offending key."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


_REQUIRED_TEXT = ("trace_id", "span_id", "name", "status")
_STATUSES = (STATUS_STARTED, STATUS_SUCCEEDED, STATUS_FAILED)


def span_from_json_dict(record: Mapping[str, Any], *, namespace: str | None = None) -> FinishedSpan:
    """Validate a JSON span record (as printed by the jsonl sink) and rebuild the span.

    Args:
        record: the decoded JSON object.
        namespace: when given, overrides the record's namespace (the receiver uses the
            namespace of the API key, never the body's).

    Raises:
        SpanRecordError: a field is missing or has the wrong type or value.
    """
    if not isinstance(record, Mapping):
        raise SpanRecordError("span", "must be a JSON object")
    for key in _REQUIRED_TEXT:
        if not isinstance(record.get(key), str) or not record[key]:
            raise SpanRecordError(key, "must be a non-empty string")
    if record["status"] not in _STATUSES:
        raise SpanRecordError("status", f"must be one of {', '.join(_STATUSES)}")
    start = _time_field(record, "start_time", required=True)
    assert start is not None
    end = _time_field(record, "end_time", required=False)
    duration = record.get("duration_us")
    if duration is None and end is not None:
        duration = end - start
    if duration is not None and (not isinstance(duration, int) or isinstance(duration, bool)):
        raise SpanRecordError("duration_us", "must be an integer")
    values: dict[str, Any] = {
        "namespace": namespace or _text(record, "namespace", default="default"),
        "date": utc_day(start),
        "trace_id": record["trace_id"],
        "span_id": record["span_id"],
        "parent_id": _text(record, "parent_id", default=None),
        "seq": _int(record, "seq", default=0),
        "name": record["name"],
        "kind": _text(record, "kind", default="internal"),
        "status": record["status"],
        "level": _text(record, "level", default="INFO"),
        "start_time": start,
        "end_time": end,
        "duration_us": duration,
        "file": _text(record, "file", default=None),
        "line": _int(record, "line", default=None),
        "function": _text(record, "function", default=None),
        "app": _text(record, "app", default=""),
        "app_version": _text(record, "app_version", default=""),
        "host": _text(record, "host", default=""),
        "pid": _int(record, "pid", default=0),
        "thread": _text(record, "thread", default=""),
        "task": _text(record, "task", default=None),
        "tags": _string_map(record, "tags"),
        "attributes": _mapping(record, "attributes"),
        "error_type": _text(record, "error_type", default=None),
        "error_message": _text(record, "error_message", default=None),
        "error_traceback": _text(record, "error_traceback", default=None),
        "handled_errors": tuple(_handled_errors(record)),
        "events": tuple(_events(record)),
        "links": _strings(record, "links"),
        "ref_src": _strings(record, "ref_src"),
        "ref_dest": _strings(record, "ref_dest"),
        "written_at": _time_field(record, "written_at", required=False),
        "schema_version": _int(record, JSON_MARKER, default=SCHEMA_VERSION),
    }
    return FinishedSpan(**values)


def _time_field(record: Mapping[str, Any], key: str, *, required: bool) -> int | None:
    value = record.get(key)
    if value is None:
        if required:
            raise SpanRecordError(key, "is required")
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value  # already microseconds
    if isinstance(value, str):
        try:
            return us_from_iso(value)
        except ValueError:
            raise SpanRecordError(key, "must be an ISO 8601 timestamp") from None
    raise SpanRecordError(key, "must be an ISO 8601 timestamp or integer microseconds")


def _text(record: Mapping[str, Any], key: str, *, default: str | None) -> Any:
    value = record.get(key, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise SpanRecordError(key, "must be a string")
    return value


def _int(record: Mapping[str, Any], key: str, *, default: int | None) -> Any:
    value = record.get(key, default)
    if value is None:
        return default
    if not isinstance(value, int) or isinstance(value, bool):
        raise SpanRecordError(key, "must be an integer")
    return value


def _mapping(record: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = record.get(key) or {}
    if isinstance(value, str):  # attributes may arrive as JSON text (the Parquet form)
        try:
            value = json.loads(value)
        except ValueError:
            raise SpanRecordError(key, "must be a JSON object") from None
    if not isinstance(value, Mapping):
        raise SpanRecordError(key, "must be an object")
    return dict(value)


def tag_text(value: Any) -> str:
    """A tag value as stored: strings as they are, anything else as ``str(value)``.

    The one rule for span tags and a receiver body's tags alike.
    """
    return value if isinstance(value, str) else str(value)


def _string_map(record: Mapping[str, Any], key: str) -> dict[str, str]:
    value = _mapping(record, key)
    return {str(k): tag_text(v) for k, v in value.items()}


def _strings(record: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = record.get(key) or []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise SpanRecordError(key, "must be a list of strings")
    return tuple(value)


def _handled_errors(record: Mapping[str, Any]) -> list[HandledError]:
    items = record.get("handled_errors") or []
    if not isinstance(items, list):
        raise SpanRecordError("handled_errors", "must be a list")
    errors = []
    for index, item in enumerate(items):
        field = f"handled_errors[{index}]"
        if not isinstance(item, Mapping):
            raise SpanRecordError(field, "must be an object")
        time = _time_field(item, "time", required=True)
        assert time is not None
        errors.append(
            HandledError(
                time=time,
                type=_text(item, "type", default="") or "",
                message=_text(item, "message", default="") or "",
                traceback=_text(item, "traceback", default="") or "",
            )
        )
    return errors


def _events(record: Mapping[str, Any]) -> list[Event]:
    items = record.get("events") or []
    if not isinstance(items, list):
        raise SpanRecordError("events", "must be a list")
    events = []
    for index, item in enumerate(items):
        field = f"events[{index}]"
        if not isinstance(item, Mapping):
            raise SpanRecordError(field, "must be an object")
        try:
            time = _time_field(item, "time", required=True)
            assert time is not None
            events.append(
                Event(
                    time=time,
                    seq=_int(item, "seq", default=0),
                    level=_text(item, "level", default="INFO"),
                    logger=_text(item, "logger", default="") or "",
                    message=_text(item, "message", default="") or "",
                    file=_text(item, "file", default=None),
                    line=_int(item, "line", default=None),
                    attributes=_mapping(item, "attributes"),
                )
            )
        except SpanRecordError as error:
            raise SpanRecordError(f"{field}.{error.field}", error.reason) from None
    return events
