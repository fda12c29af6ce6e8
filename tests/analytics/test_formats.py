"""Text results written in pieces are the same text as written at once."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest

from span_tree.analytics import _formats
from span_tree.analytics._formats import rows_of, text, write_result, write_rows


def _whole_text(table: pa.Table, fmt: str) -> str:
    """The text of ``table`` built in one piece (what the pieces must add up to)."""
    rows = rows_of(table)
    if fmt == "json":
        return json.dumps(rows, ensure_ascii=False, indent=2, default=str) + "\n"
    if fmt == "jsonl":
        return "".join(json.dumps(row, ensure_ascii=False, default=str) + "\n" for row in rows)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(table.column_names)
    for row in table.to_pylist():
        writer.writerow([text(value) for value in row.values()])
    return buffer.getvalue()


def _table(rows: int) -> pa.Table:
    return pa.table(
        {
            "name": [f'span "{i}",\nnext' for i in range(rows)],
            "at": [datetime(2026, 1, 1, tzinfo=UTC)] * rows,
            "tags": pa.array(
                [[("k", str(i))] for i in range(rows)], pa.map_(pa.string(), pa.string())
            ),
            "events": [[{"level": "INFO", "n": i}] for i in range(rows)],
            "ratio": [None if i % 3 else i / 7 for i in range(rows)],
        }
    )


@pytest.mark.parametrize("fmt", ["csv", "json", "jsonl"])
@pytest.mark.parametrize("rows", [0, 1, 7])
def test_written_in_pieces_equals_written_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str, rows: int
) -> None:
    """csv, json and jsonl written batch by batch equal the text of the whole table."""
    monkeypatch.setattr(_formats, "_CHUNK_ROWS", 3)  # several batches from a few rows
    table = _table(rows)
    output = tmp_path / f"out.{fmt}"
    write_result(table, fmt=fmt, output=str(output))
    assert _whole_text(table, fmt) == output.read_text(encoding="utf-8")


# Every kind of value a view or an ad-hoc query returns, NULLs and empty ones included.
_EVERY_KIND = """
SELECT * FROM (VALUES
    (1, 'a "quoted",
line', TIMESTAMPTZ '2026-01-02 03:04:05.123456+00', TIMESTAMPTZ '2026-01-02 03:04:05+00',
     DATE '2026-01-02', MAP {'env': 'prod'}, ['x', 'y'], {'level': 'INFO', 'n': 2},
     2.5::DOUBLE, 3.5::DOUBLE, 1.25::DECIMAL(10, 2), 7::DECIMAL(10, 2), true,
     '{"user": 1}', 'é', 12345678901234567890::HUGEINT, 0.1::FLOAT),
    (2, NULL, NULL, NULL, NULL, MAP {}, [], NULL, NULL, 'nan'::DOUBLE, NULL, NULL, false,
     'not json', '', NULL, NULL)
) AS t(id, name, started, ended, day, tags, links, event, p50_us, p99_us, amount, whole,
       ok, attributes, text, big, small)
ORDER BY id
"""


@pytest.mark.parametrize("fmt", ["csv", "json", "jsonl"])
@pytest.mark.parametrize("rows", [0, 2])
def test_rows_from_duckdb_are_written_as_the_arrow_table_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str, rows: int
) -> None:
    """write_rows (DuckDB's Python rows, no pyarrow) writes the same text as write_result
    of the same result fetched as Arrow, in every text format, chunk by chunk."""
    import duckdb

    monkeypatch.setattr(_formats, "_CHUNK_ROWS", 1)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    relation = con.sql(f"SELECT * FROM ({_EVERY_KIND}) LIMIT {rows}")
    from_arrow, from_rows = tmp_path / "arrow", tmp_path / "rows"
    write_result(relation.to_arrow_table(), fmt=fmt, output=str(from_arrow))
    types = [str(kind) for kind in relation.types]
    write_rows(relation.columns, types, relation.fetchall(), fmt=fmt, output=str(from_rows))
    assert from_arrow.read_text(encoding="utf-8") == from_rows.read_text(encoding="utf-8")
