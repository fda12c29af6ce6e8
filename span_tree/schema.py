"""The Arrow schema of span rows, and conversion between ``FinishedSpan`` and Arrow.

One constant, ``SPAN_SCHEMA``, pinned by a test: the SQL views depend on these column
names. Imports pyarrow, so ``import span_tree`` never imports this module.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from span_tree._record import (
    SCHEMA_VERSION,
    SPAN_COLUMNS,
    Event,
    FinishedSpan,
    HandledError,
)

TIMESTAMP = pa.timestamp("us", tz="UTC")

HANDLED_ERROR_TYPE = pa.struct(
    [
        ("time", TIMESTAMP),
        ("type", pa.string()),
        ("message", pa.string()),
        ("traceback", pa.string()),
    ]
)

EVENT_TYPE = pa.struct(
    [
        ("time", TIMESTAMP),
        ("seq", pa.int64()),
        ("level", pa.string()),
        ("logger", pa.string()),
        ("message", pa.string()),
        ("file", pa.string()),
        ("line", pa.int32()),
        ("attributes", pa.string()),  # JSON text
    ]
)

SPAN_SCHEMA = pa.schema(
    [
        ("namespace", pa.string()),
        ("date", pa.string()),
        ("trace_id", pa.string()),
        ("span_id", pa.string()),
        ("parent_id", pa.string()),
        ("seq", pa.int64()),
        ("name", pa.string()),
        ("kind", pa.string()),
        ("status", pa.string()),
        ("level", pa.string()),
        ("start_time", TIMESTAMP),
        ("end_time", TIMESTAMP),
        ("duration_us", pa.int64()),
        ("file", pa.string()),
        ("line", pa.int32()),
        ("function", pa.string()),
        ("app", pa.string()),
        ("app_version", pa.string()),
        ("host", pa.string()),
        ("pid", pa.int64()),
        ("thread", pa.string()),
        ("task", pa.string()),
        ("tags", pa.map_(pa.string(), pa.string())),
        ("attributes", pa.string()),  # JSON text
        ("error_type", pa.string()),
        ("error_message", pa.string()),
        ("error_traceback", pa.string()),
        ("handled_errors", pa.list_(HANDLED_ERROR_TYPE)),
        ("events", pa.list_(EVENT_TYPE)),
        ("links", pa.list_(pa.string())),
        ("ref_src", pa.list_(pa.string())),
        ("ref_dest", pa.list_(pa.string())),
        ("written_at", TIMESTAMP),
        ("schema_version", pa.int32()),
    ],
    metadata={"span_tree.schema_version": str(SCHEMA_VERSION)},
)

assert tuple(SPAN_SCHEMA.names) == SPAN_COLUMNS, "SPAN_SCHEMA and FinishedSpan disagree"

# Columns whose Python values need more than pa.array(values, type).
_JSON_COLUMNS = frozenset({"attributes"})
_TUPLE_LIST_COLUMNS = frozenset({"links", "ref_src", "ref_dest"})


def _json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=repr)


def _tags_pairs(tags: Any) -> list[tuple[str, str]]:
    return list(tags.items())


def _events_value(events: tuple[Event, ...]) -> list[dict[str, Any]]:
    return [
        {
            "time": event.time,
            "seq": event.seq,
            "level": event.level,
            "logger": event.logger,
            "message": event.message,
            "file": event.file,
            "line": event.line,
            "attributes": _json_text(dict(event.attributes)),
        }
        for event in events
    ]


def _column_array(name: str, values: Sequence[Any], field_type: pa.DataType) -> pa.Array:
    if name in _JSON_COLUMNS:
        return pa.array([_json_text(dict(v)) for v in values], pa.string())
    if name == "tags":
        return pa.array([_tags_pairs(v) for v in values], field_type)
    if name == "events":
        return pa.array(
            [_events_value(v) if v else [] for v in values], field_type
        )
    if name == "handled_errors":
        return pa.array([[e._asdict() for e in v] for v in values], field_type)
    if name in _TUPLE_LIST_COLUMNS:
        return pa.array([list(v) for v in values], field_type)
    return pa.array(values, field_type)


def records_to_table(
    records: Sequence[FinishedSpan], *, written_at: int | None = None
) -> pa.Table:
    """Convert span records to an Arrow table of ``SPAN_SCHEMA``.

    Args:
        records: the spans, in any order.
        written_at: microseconds since the epoch to stamp on every row (the Parquet sink
            sets it at write time); ``None`` keeps each record's own value.

    Returns:
        A table with exactly ``SPAN_SCHEMA``.
    """
    if not records:
        return SPAN_SCHEMA.empty_table()
    columns = list(zip(*records, strict=True))
    arrays = []
    for index, field in enumerate(SPAN_SCHEMA):
        values: Sequence[Any] = columns[index]
        if field.name == "written_at" and written_at is not None:
            values = [written_at] * len(records)
        arrays.append(_column_array(field.name, values, field.type))
    return pa.Table.from_arrays(arrays, schema=SPAN_SCHEMA)


def _us(value: Any) -> int | None:
    """Arrow timestamps come back as datetimes from to_pylist; turn them into µs."""
    if value is None:
        return None
    delta = value - _EPOCH
    return int((delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def table_to_records(table: pa.Table) -> list[FinishedSpan]:
    """Convert an Arrow table (``SPAN_SCHEMA`` or an older, narrower version) to records.

    Columns missing from ``table`` take their defaults, so files written by an older
    schema version still read.
    """
    rows = table.to_pylist()
    records = []
    for row in rows:
        tags = row.get("tags") or []
        record = FinishedSpan(
            namespace=row.get("namespace") or "default",
            date=row.get("date") or "",
            trace_id=row["trace_id"],
            span_id=row["span_id"],
            parent_id=row.get("parent_id"),
            seq=row.get("seq") or 0,
            name=row["name"],
            kind=row.get("kind") or "internal",
            status=row["status"],
            level=row.get("level") or "INFO",
            start_time=_us(row["start_time"]) or 0,
            end_time=_us(row.get("end_time")),
            duration_us=row.get("duration_us"),
            file=row.get("file"),
            line=row.get("line"),
            function=row.get("function"),
            app=row.get("app") or "",
            app_version=row.get("app_version") or "",
            host=row.get("host") or "",
            pid=row.get("pid") or 0,
            thread=row.get("thread") or "",
            task=row.get("task"),
            tags=dict(tags) if isinstance(tags, list) else dict(tags),
            attributes=json.loads(row.get("attributes") or "{}"),
            error_type=row.get("error_type"),
            error_message=row.get("error_message"),
            error_traceback=row.get("error_traceback"),
            handled_errors=tuple(
                HandledError(_us(e["time"]) or 0, e["type"], e["message"], e["traceback"])
                for e in row.get("handled_errors") or []
            ),
            events=tuple(
                Event(
                    time=_us(e["time"]) or 0,
                    seq=e.get("seq") or 0,
                    level=e["level"],
                    logger=e["logger"],
                    message=e["message"],
                    file=e.get("file"),
                    line=e.get("line"),
                    attributes=json.loads(e.get("attributes") or "{}"),
                )
                for e in row.get("events") or []
            ),
            links=tuple(row.get("links") or ()),
            ref_src=tuple(row.get("ref_src") or ()),
            ref_dest=tuple(row.get("ref_dest") or ()),
            written_at=_us(row.get("written_at")),
            schema_version=row.get("schema_version") or 1,
        )
        records.append(record)
    return records
