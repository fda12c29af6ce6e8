"""Writing query results: rich table, csv, json, jsonl or parquet.

Used by the query commands (and usable from scripts). Values are made printable the
same way for every text format: timestamps as ISO 8601 UTC, maps and lists as JSON.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from itertools import islice
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    # rich is imported where a table is drawn, pyarrow where an Arrow table is written:
    # `spantree sql --format csv|json|jsonl` needs neither (write_rows).
    import pyarrow as pa
    from rich.console import Console, RenderableType
    from rich.text import Text

FORMATS = ("table", "csv", "json", "jsonl", "parquet")

Formatter = Callable[[Any], str]


# Width of tables written to a pipe or file: wide enough that ids and names never fold.
PIPE_WIDTH = 160


def stdout_console() -> Console:
    """A console on the current stdout (``CliRunner`` swaps it), no colour when piped.

    Its width is the terminal's; in a pipe ``COLUMNS`` when set, else ``PIPE_WIDTH``.
    """
    from rich.console import Console

    width = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else PIPE_WIDTH
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
    """The rows of ``table`` (or of one record batch) as plain dicts.

    Tags and attributes have one JSON shape in every format: an object (``{}`` when
    empty, not ``[]``), never a JSON string inside the JSON.
    """
    fixes = _shape_fixes(table.schema)
    rows = []
    for row in table.to_pylist():
        item = {key: plain(value) for key, value in row.items()}
        for name, fix in fixes.items():
            item[name] = fix(item[name])
        rows.append(item)
    return rows


def _shape_fixes(schema: pa.Schema) -> dict[str, Callable[[Any], Any]]:
    """Per column, what turns its plain value into its one JSON shape."""
    import pyarrow as pa

    fixes: dict[str, Callable[[Any], Any]] = {}
    for field in schema:
        if pa.types.is_map(field.type):
            fixes[field.name] = _empty_map
        elif field.name == "attributes" and (
            pa.types.is_string(field.type) or pa.types.is_large_string(field.type)
        ):
            fixes[field.name] = _json_object
    return fixes


def _empty_map(value: Any) -> Any:
    return {} if value == [] else value


def _json_object(value: Any) -> Any:
    """A JSON-object text (span attributes are stored so) as the object itself."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def write_result(
    table: pa.Table,
    *,
    fmt: str,
    output: str | None = None,
    title: str | None = None,
    formatters: Mapping[str, Formatter] | None = None,
    headers: Mapping[str, str] | None = None,
    priority: Sequence[str] | None = None,
    wide: Collection[str] = (),
) -> None:
    """Write ``table`` in format ``fmt`` to stdout, or to ``output`` when given.

    A table fits the console's width: long text is cut with an ellipsis; when the
    columns do not all fit, those last in ``priority`` are left out, or without a
    priority (ad-hoc SQL) each row is shown as a record of ``column  value`` lines. A
    last line then says how to get everything (``--format csv|json``).

    Args:
        table: the result.
        fmt: one of ``FORMATS``.
        output: a file path (required for parquet).
        title: the rich table's title.
        formatters: per-column cell text for the table format (durations...).
        headers: per-column header text for the table format.
        priority: the table's columns, most important first (they are still shown in
            ``table``'s order).
        wide: text columns that keep more room before others are shown (messages).

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
    table = whole_durations(table)
    if fmt == "table":
        if output:
            from rich.console import Console

            with open(output, "w", encoding="utf-8") as handle:
                console = Console(file=handle, width=PIPE_WIDTH, soft_wrap=False)
                console.print(
                    fit_table(table, console.width, title, formatters, headers, priority, wide)
                )
        else:
            console = stdout_console()
            console.print(
                fit_table(table, console.width, title, formatters, headers, priority, wide)
            )
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
    return _text_pieces(table.column_names, (rows_of(batch) for batch in batches), fmt)


def write_rows(
    columns: Sequence[str],
    types: Sequence[str],
    rows: Iterable[tuple[Any, ...]],
    *,
    fmt: str,
    output: str | None = None,
) -> None:
    """Write DuckDB result rows in a text format, as ``write_result`` writes a table.

    The same text as ``write_result`` of the same result fetched as Arrow, without
    loading pyarrow (most of a small query's start-up): timestamps as ISO 8601 UTC,
    maps and lists as JSON, float ``*_us`` columns in whole microseconds.

    Args:
        columns: the result's column names.
        types: their DuckDB type names (``DOUBLE``, ``MAP(VARCHAR, VARCHAR)``...).
        rows: the rows, as DuckDB's Python API gives them.
        fmt: ``csv``, ``json`` or ``jsonl``.
        output: a file path; default stdout.

    Raises:
        ValueError: another format.
        OSError: ``output`` cannot be written.
    """
    if fmt not in ("csv", "json", "jsonl"):
        raise ValueError(f"write_rows writes csv, json or jsonl, not {fmt!r}")
    shaped: list[Callable[[Any], Any] | None] = []
    for name, kind in zip(columns, types, strict=True):
        if name.endswith("_us") and kind in ("DOUBLE", "FLOAT"):
            shaped.append(_whole)
        elif name == "attributes" and kind == "VARCHAR":
            shaped.append(_json_object)
        else:
            shaped.append(None)
    names = list(columns)

    def chunks() -> Iterator[list[dict[str, Any]]]:
        iterator = iter(rows)
        while chunk := list(islice(iterator, _CHUNK_ROWS)):
            yield [
                {
                    name: plain(value) if fix is None else fix(plain(value))
                    for name, fix, value in zip(names, shaped, row, strict=True)
                }
                for row in chunk
            ]

    pieces = _text_pieces(names, chunks(), fmt)
    if output:
        with open(output, "w", encoding="utf-8", newline="") as handle:
            handle.writelines(pieces)
    else:
        sys.stdout.writelines(pieces)
        sys.stdout.flush()


def _whole(value: Any) -> Any:
    """A float duration in whole microseconds (as ``whole_durations`` rounds a column)."""
    return round(value) if isinstance(value, float) and value == value else value


def _text_pieces(
    columns: Sequence[str], chunks: Iterable[list[dict[str, Any]]], fmt: str
) -> Iterator[str]:
    """The text of rows (plain dicts, a chunk at a time) in ``fmt`` (csv, json or jsonl)."""
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(columns)
        for chunk in chunks:
            for row in chunk:
                writer.writerow([text(value) for value in row.values()])
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
        yield buffer.getvalue()
        return
    if fmt == "jsonl":
        for chunk in chunks:
            yield "".join(json.dumps(row, ensure_ascii=False, default=str) + "\n" for row in chunk)
        return
    # json: the same text as json.dumps(rows, indent=2), one item at a time.
    separator = "[\n"
    for chunk in chunks:
        for row in chunk:
            item = json.dumps(row, ensure_ascii=False, indent=2, default=str)
            yield separator + "  " + item.replace("\n", "\n  ")
            separator = ",\n"
    yield "[]\n" if separator == "[\n" else "\n]\n"


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


def whole_durations(table: pa.Table) -> pa.Table:
    """Float ``*_us`` columns (percentiles, averages) rounded to whole microseconds."""
    import pyarrow as pa

    for index, field in enumerate(table.schema):
        if field.name.endswith("_us") and pa.types.is_floating(field.type):
            import pyarrow.compute as pc  # only when there is such a column

            column = table.column(index)
            # NaN (a quantile of nothing in some engines) is written as null, not an error.
            column = pc.if_else(pc.is_nan(column), pa.scalar(None, field.type), column)
            column = pc.round(column).cast(pa.int64())
            table = table.set_column(index, pa.field(field.name, pa.int64()), column)
    return table


# Between two columns: one space of padding each side, collapsed, and the divider.
_GAP = 2
# Text columns may be cut down to this many characters (or their header's width).
_MIN_TEXT = 12
_MIN_WIDE = 32


def fit_table(
    table: pa.Table,
    width: int,
    title: str | None,
    formatters: Mapping[str, Formatter] | None,
    headers: Mapping[str, str] | None,
    priority: Sequence[str] | None,
    wide: Collection[str] = (),
) -> RenderableType:
    """``table`` as a rich table at most ``width`` characters wide (see ``write_result``).

    Identifiers, numbers and times are never cut; other text gets what room is left,
    down to ``_MIN_TEXT`` characters (``_MIN_WIDE`` for ``wide`` ones), and ends in "…"
    when cut.
    """
    from rich import box
    from rich.console import Group
    from rich.table import Table

    formatters = formatters or {}
    headers = headers or {}
    names: list[str] = list(table.column_names)
    fixes = _shape_fixes(table.schema)
    cells = {
        name: [
            _cell(name, value, formatters, fixes.get(name))
            for value in table.column(name).to_pylist()
        ]
        for name in names
    }
    label = {name: headers.get(name, name) for name in names}
    natural = {name: max([len(label[name]), *map(len, cells[name])]) for name in names}
    fixed = {name for name in names if _uncut(name, table.schema.field(name).type)}
    least = {
        name: natural[name]
        if name in fixed
        else min(natural[name], max(len(label[name]), _MIN_WIDE if name in wide else _MIN_TEXT))
        for name in names
    }
    shown: list[str] = []
    used = -_GAP
    for name in priority or names:
        if name in least and used + _GAP + least[name] <= width:
            shown.append(name)
            used += _GAP + least[name]
    hidden = [name for name in (priority or names) if name in natural and name not in shown]
    if (hidden and priority is None) or not shown:
        return _records(names, label, cells, width, title)
    shown = [name for name in names if name in shown]
    widths = _share(shown, least, natural, fixed, width - _GAP * (len(shown) - 1))
    rendered = Table(
        title=title,
        title_justify="left",
        header_style="bold",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        collapse_padding=True,
    )
    import pyarrow as pa

    for name in shown:
        field_type = table.schema.field(name).type
        numeric = pa.types.is_integer(field_type) or pa.types.is_floating(field_type)
        rendered.add_column(
            label[name],
            justify="right" if numeric else "left",
            width=widths[name],
            no_wrap=True,
            overflow="ellipsis",
        )
    for row in range(table.num_rows):
        rendered.add_row(*(_styled(cells[name][row]) for name in shown))
    cut = any(widths[name] < natural[name] for name in shown)
    hint = _hint(hidden, cut, width)
    return Group(rendered, hint) if hint is not None else rendered


def _cell(
    name: str,
    value: Any,
    formatters: Mapping[str, Formatter],
    fix: Callable[[Any], Any] | None = None,
) -> str:
    """One value's cell text, on one line."""
    if fix is not None and name not in formatters:
        value = fix(plain(value))
    if name in formatters:
        shown = formatters[name](value)
    elif name.endswith("_us") and isinstance(value, int) and not isinstance(value, bool):
        from span_tree._display import format_duration

        shown = format_duration(value)
    else:
        shown = text(value)
    return " ".join(shown.split()) if "\n" in shown or "\t" in shown else shown


def _uncut(name: str, field_type: pa.DataType) -> bool:
    """Columns whose values must show whole: ids are copied into the next command."""
    import pyarrow as pa

    return (
        name in _IDENTIFIERS
        or name.endswith("_id")
        or pa.types.is_integer(field_type)
        or pa.types.is_floating(field_type)
        or pa.types.is_temporal(field_type)
        or pa.types.is_boolean(field_type)
    )


def _share(
    names: list[str], least: dict[str, int], natural: dict[str, int], fixed: set[str], room: int
) -> dict[str, int]:
    """Column widths: each its least, then the room left shared among cut text columns."""
    widths = {name: least[name] for name in names}
    spare = room - sum(widths.values())
    wanting = [name for name in names if name not in fixed and widths[name] < natural[name]]
    while spare > 0 and wanting:
        share = max(1, spare // len(wanting))
        for name in list(wanting):
            grant = min(share, natural[name] - widths[name], spare)
            widths[name] += grant
            spare -= grant
            if widths[name] >= natural[name]:
                wanting.remove(name)
            if spare <= 0:
                break
    return widths


def _records(
    names: list[str],
    label: dict[str, str],
    cells: dict[str, list[str]],
    width: int,
    title: str | None,
) -> RenderableType:
    """Each row as a block of ``column  value`` lines (like psql's ``\\x``)."""
    from rich.console import Group
    from rich.text import Text

    key_width = max(len(label[name]) for name in names)
    value_width = max(10, width - key_width - 2)
    rows = len(cells[names[0]]) if names else 0
    lines: list[RenderableType] = [Text(title, style="italic")] if title else []
    cut = False
    for row in range(rows):
        lines.append(Text(f"─[ row {row + 1} ]".ljust(min(width, 40), "─"), style="dim"))
        for name in names:
            value = cells[name][row]
            if len(value) > value_width:
                value, cut = value[: value_width - 1] + "…", True
            line = Text(label[name].ljust(key_width) + "  ", style="bold")
            line.append_text(_styled(value))
            lines.append(line)
    if not rows:
        lines.append(Text("(no rows)", style="dim"))
    hint = _hint([], cut, width, records=True)
    if hint is not None:
        lines.append(hint)
    return Group(*lines)


def _hint(hidden: list[str], cut: bool, width: int, *, records: bool = False) -> Text | None:
    """The last line, at most ``width`` wide: what was left out and how to see it all."""
    from rich.text import Text

    tail = "; --format csv|json shows everything)"
    if records:
        said = "(one record per row: the columns do not fit"
    elif hidden:
        said = f"(not shown: {', '.join(hidden)}"
        if len(said) + len(tail) > width:
            said = f"({len(hidden)} more columns"
    elif cut:
        said = "(long values cut with …"
    else:
        return None
    return Text(said + tail, style="dim")


def _styled(cell: str) -> Text:
    from rich.text import Text

    style = _STATUS_STYLES.get(cell, "")
    return Text(cell, style=style)
