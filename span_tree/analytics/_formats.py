"""Writing query results: rich table, csv, json, jsonl or parquet.

Used by the query commands (and usable from scripts). Values are made printable the
same way for every text format: timestamps as ISO 8601 UTC, maps and lists as JSON.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa
from rich.console import Console
from rich.table import Table

FORMATS = ("table", "csv", "json", "jsonl", "parquet")

Formatter = Callable[[Any], str]


# Width of tables written to a pipe or file: wide enough that ids and names never fold.
PIPE_WIDTH = 160


def stdout_console() -> Console:
    """A console on the current stdout (``CliRunner`` swaps it), no colour when piped."""
    width = None if sys.stdout.isatty() else PIPE_WIDTH
    return Console(file=sys.stdout, soft_wrap=False, width=width)


def plain(value: Any) -> Any:
    """A JSON-ready form of one Arrow value."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, list):
        if value and all(isinstance(item, tuple) and len(item) == 2 for item in value):
            return {str(k): plain(v) for k, v in value}  # an Arrow map
        if value and all(
            isinstance(item, Mapping) and set(item) == {"key", "value"} for item in value
        ):
            return {str(item["key"]): plain(item["value"]) for item in value}  # polars map
        return [plain(item) for item in value]
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def text(value: Any) -> str:
    """One value as cell text: empty for null, JSON for nested values."""
    value = plain(value)
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def rows_of(table: pa.Table | pa.RecordBatch) -> list[dict[str, Any]]:
    """The rows of ``table`` (or of one record batch) as plain dicts."""
    return [{key: plain(value) for key, value in row.items()} for row in table.to_pylist()]


def write_result(
    table: pa.Table,
    *,
    fmt: str,
    output: str | None = None,
    title: str | None = None,
    formatters: Mapping[str, Formatter] | None = None,
    headers: Mapping[str, str] | None = None,
) -> None:
    """Write ``table`` in format ``fmt`` to stdout, or to ``output`` when given.

    Args:
        table: the result.
        fmt: one of ``FORMATS``.
        output: a file path (required for parquet).
        title: the rich table's title.
        formatters: per-column cell text for the table format (durations...).
        headers: per-column header text for the table format.

    Raises:
        ValueError: unknown format, or parquet without ``output``.
        OSError: ``output`` cannot be written.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    if fmt == "parquet":
        if not output:
            raise ValueError("--format parquet needs --output FILE")
        import pyarrow.parquet as pq

        pq.write_table(table, output)
        print(f"wrote {table.num_rows} rows to {output}", file=sys.stderr)
        return
    if fmt == "table":
        rendered = _rich_table(table, title=title, formatters=formatters or {}, headers=headers)
        if output:
            with open(output, "w", encoding="utf-8") as handle:
                Console(file=handle, width=PIPE_WIDTH, soft_wrap=False).print(rendered)
        else:
            stdout_console().print(rendered)
        return
    if output:
        with open(output, "w", encoding="utf-8", newline="") as handle:
            handle.writelines(_text_output(table, fmt))
    else:
        sys.stdout.writelines(_text_output(table, fmt))
        sys.stdout.flush()


# Rows turned into Python objects at once: a big result is written piece by piece
# instead of as one string (which took many times the Arrow table's memory).
_CHUNK_ROWS = 10_000


def _text_output(table: pa.Table, fmt: str) -> Iterator[str]:
    """The text of ``table`` in ``fmt`` (csv, json or jsonl), in pieces."""
    batches = table.to_batches(max_chunksize=_CHUNK_ROWS)
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(table.column_names)
        for batch in batches:
            for row in batch.to_pylist():
                writer.writerow([text(value) for value in row.values()])
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
        yield buffer.getvalue()
        return
    if fmt == "jsonl":
        for batch in batches:
            yield "".join(
                json.dumps(row, ensure_ascii=False, default=str) + "\n" for row in rows_of(batch)
            )
        return
    # json: the same text as json.dumps(rows, indent=2), one item at a time.
    if table.num_rows == 0:
        yield "[]\n"
        return
    separator = "[\n"
    for batch in batches:
        for row in rows_of(batch):
            item = json.dumps(row, ensure_ascii=False, indent=2, default=str)
            yield separator + "  " + item.replace("\n", "\n  ")
            separator = ",\n"
    yield "\n]\n"


# Ids are copied from the table into the next command: never fold them.
_IDENTIFIERS = frozenset({"fingerprint", "trace_id", "span_id", "last_trace_id"})

_STATUS_STYLES = {
    "failed": "red",
    "succeeded": "green",
    "started": "yellow",
    "ALERT": "bold red",
    "WARN": "yellow",
    "OK": "green",
}


def _rich_table(
    table: pa.Table,
    *,
    title: str | None,
    formatters: Mapping[str, Formatter],
    headers: Mapping[str, str] | None,
) -> Table:
    rendered = Table(title=title, title_justify="left", header_style="bold")
    names: Sequence[str] = table.column_names
    for name in names:
        field_type = table.schema.field(name).type
        numeric = pa.types.is_integer(field_type) or pa.types.is_floating(field_type)
        rendered.add_column(
            (headers or {}).get(name, name),
            justify="right" if numeric else "left",
            overflow="fold",
            no_wrap=name in _IDENTIFIERS,
        )
    for row in table.to_pylist():
        cells = []
        for name in names:
            value = row[name]
            cell = formatters[name](value) if name in formatters else text(value)
            style = _STATUS_STYLES.get(cell, "")
            cells.append(f"[{style}]{_escape(cell)}[/]" if style else _escape(cell))
        rendered.add_row(*cells)
    return rendered


def _escape(cell: str) -> str:
    from rich.markup import escape

    return escape(cell)
