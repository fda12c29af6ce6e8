"""The span schema is one constant; the SQL views depend on these exact columns and types."""

from __future__ import annotations

import pyarrow as pa

from span_tree._record import SCHEMA_VERSION, SPAN_COLUMNS, FinishedSpan
from span_tree.storage.schema import SPAN_SCHEMA

# Written out literally on purpose: changing the schema must change this test too.
EXPECTED_COLUMNS = [
    ("namespace", "string"),
    ("date", "string"),
    ("trace_id", "string"),
    ("span_id", "string"),
    ("parent_id", "string"),
    ("seq", "int64"),
    ("name", "string"),
    ("kind", "string"),
    ("status", "string"),
    ("level", "string"),
    ("start_time", "timestamp[us, tz=UTC]"),
    ("end_time", "timestamp[us, tz=UTC]"),
    ("duration_us", "int64"),
    ("file", "string"),
    ("line", "int32"),
    ("function", "string"),
    ("app", "string"),
    ("app_version", "string"),
    ("host", "string"),
    ("pid", "int64"),
    ("thread", "string"),
    ("task", "string"),
    ("tags", "map<string, string>"),
    ("attributes", "string"),
    ("error_type", "string"),
    ("error_message", "string"),
    ("error_traceback", "string"),
    (
        "handled_errors",
        "list<item: struct<time: timestamp[us, tz=UTC], type: string, message: string, "
        "traceback: string>>",
    ),
    (
        "events",
        "list<item: struct<time: timestamp[us, tz=UTC], seq: int64, level: string, "
        "logger: string, message: string, file: string, line: int32, attributes: string>>",
    ),
    ("links", "list<item: string>"),
    ("ref_src", "list<item: string>"),
    ("ref_dest", "list<item: string>"),
    ("written_at", "timestamp[us, tz=UTC]"),
    ("schema_version", "int32"),
]


def test_span_schema_columns_and_types_are_pinned() -> None:
    """SPAN_SCHEMA has exactly these columns, in this order, with these Arrow types."""
    assert EXPECTED_COLUMNS == [(field.name, str(field.type)) for field in SPAN_SCHEMA]


def test_schema_version_is_pinned() -> None:
    """The schema version is 1 and is stored in the schema metadata."""
    assert 1 == SCHEMA_VERSION
    assert {b"span_tree.schema_version": b"1"} == SPAN_SCHEMA.metadata


def test_finished_span_fields_match_the_schema() -> None:
    """`FinishedSpan` fields are the schema's columns, in the same order."""
    expected = [name for name, _ in EXPECTED_COLUMNS]
    assert expected == list(FinishedSpan._fields)
    assert tuple(expected) == SPAN_COLUMNS


def test_time_columns_are_utc_microseconds() -> None:
    """Every timestamp column is microseconds in UTC."""
    for name in ("start_time", "end_time", "written_at"):
        assert pa.timestamp("us", tz="UTC") == SPAN_SCHEMA.field(name).type
