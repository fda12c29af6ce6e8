"""The Arrow schema of span rows, and conversion between ``FinishedSpan`` and Arrow.

One constant, ``SPAN_SCHEMA``, pinned by a test: the SQL views depend on these column
names. Imports pyarrow, so ``import span_tree`` never imports this module.
"""

from __future__ import annotations

import gc
import json
import operator
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from itertools import chain, compress, pairwise, repeat
from typing import Any

import pyarrow as pa

from span_tree._record import (
    SCHEMA_VERSION,
    SPAN_COLUMNS,
    Event,
    FinishedSpan,
    HandledError,
    us_from_datetime,
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

_orjson: Any
try:  # 5-10x faster than json.dumps for the per-span attributes
    import orjson as _orjson
except ImportError:  # pragma: no cover - orjson is a declared dependency
    _orjson = None

_ORJSON_OPTIONS = 0 if _orjson is None else _orjson.OPT_NON_STR_KEYS
_json_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=repr).encode


def _json_default(value: Any) -> Any:
    """What orjson cannot encode natively: other mappings as objects, the rest as repr."""
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, (tuple, set, frozenset)):
        return list(value)
    return repr(value)


def _json_text(value: Any) -> str:
    """JSON text of an attributes mapping (``"{}"`` for an empty one)."""
    if not value:
        return "{}"
    if _orjson is not None:
        try:
            text: str = _orjson.dumps(value, default=_json_default, option=_ORJSON_OPTIONS).decode()
            return text
        except (TypeError, _orjson.JSONEncodeError):
            pass  # e.g. integers beyond 64 bits, or a mapping that is not a dict
    return _json_encode(dict(value))


def _json_array(values: Sequence[Any]) -> pa.Array:
    """A string column of JSON texts, one per attributes mapping."""
    if _orjson is not None:
        dumps = _orjson.dumps
        try:
            # Decoding to str and converting is faster than handing Arrow the bytes
            # (measured: Arrow validates bytes as UTF-8 one by one).
            encoded = [
                dumps(value, default=_json_default, option=_ORJSON_OPTIONS).decode()
                if value
                else "{}"
                for value in values
            ]
            return pa.array(encoded, pa.string())
        except (TypeError, _orjson.JSONEncodeError):
            pass  # one odd value: encode row by row with the fallbacks
    return pa.array([_json_text(value) for value in values], pa.string())


def _offsets(lengths: Iterable[int]) -> pa.Array:
    """List offsets (0, l0, l0+l1, ...) computed in Arrow rather than in Python."""
    import pyarrow.compute as pc  # here, not at import: a reader of the store never needs it

    return pc.cumulative_sum(pa.array(chain((0,), lengths), pa.int32()))


def _string_lists(values: Sequence[Sequence[str]], field_type: pa.DataType) -> pa.Array:
    """A list<string> column from tuples of strings, without per-row lists."""
    if not any(values):
        return pa.ListArray.from_arrays(
            pa.array(repeat(0, len(values) + 1), pa.int32()), pa.array([], pa.string())
        ).cast(field_type)
    flat = pa.array([item for items in values for item in items], pa.string())
    return pa.ListArray.from_arrays(_offsets(map(len, values)), flat)


def _tags_array(values: Sequence[Any], field_type: pa.DataType) -> pa.Array:
    """A map<string,string> column from dicts, built from flat keys and values.

    Neighbouring spans usually carry equal tags (one trace, one process), so each run
    of equal dicts is converted once and repeated by index. Runs are found in C where
    the same dict object repeats (the processor hands one per trace); only where the
    object changes are two dicts compared.
    """
    count = len(values)
    previous = values[0]
    runs: list[Any] = [previous]
    run_starts = [0]
    if count > 1:
        changes = compress(range(1, count), map(operator.is_not, values[1:], values[:-1]))
        for index in changes:
            tags = values[index]
            if tags != previous:
                runs.append(tags)
                run_starts.append(index)
            previous = tags
    keys = pa.array([key for tags in runs for key in tags], pa.string())
    items = pa.array([item for tags in runs for item in tags.values()], pa.string())
    mapped = pa.MapArray.from_arrays(_offsets(map(len, runs)), keys, items)
    if len(runs) == count:
        return mapped
    if len(runs) == 1:
        indices = pa.repeat(pa.scalar(0, pa.int32()), count)
    else:
        run_starts.append(count)
        lengths = map(operator.sub, run_starts[1:], run_starts[:-1])
        indices = pa.array(
            list(chain.from_iterable(map(repeat, range(len(runs)), lengths))), pa.int32()
        )
    return mapped.take(indices)


def _struct_lists(
    values: Sequence[Sequence[tuple[Any, ...]]], struct_type: pa.StructType
) -> pa.Array:
    """A list<struct> column from tuples of NamedTuples whose fields match the struct."""
    flat = list(chain.from_iterable(values))
    columns = _transpose(flat, struct_type.num_fields)
    children = []
    for index in range(struct_type.num_fields):
        child = struct_type.field(index)
        column: Sequence[Any] = columns[index]
        if child.name == "attributes":
            children.append(_json_array(column))
        elif _constant(column):  # one logger, one level, one file...: converted once
            children.append(pa.repeat(pa.scalar(column[0], child.type), len(column)))
        else:
            children.append(pa.array(column, child.type))
    structs = pa.StructArray.from_arrays(children, fields=list(struct_type))
    return pa.ListArray.from_arrays(_offsets(map(len, values)), structs)


# Types whose equal values are the same stored value. Equal containers and floats need
# not be: {"n": 1} == {"n": True} and 0.0 == -0.0, yet each is stored as given.
_EQUAL_IS_SAME = frozenset((str, int, type(None)))
# Containers whose empty values are all stored alike (no items to be unlike): a column of
# them is counted in C like text, not compared object by object (20x slower).
_EMPTY_IS_SAME = frozenset((tuple, dict))


def holds_only(values: Sequence[Any], value: Any) -> bool:
    """True when every item of ``values`` is stored as ``value`` is: the very same object,
    or for text, integers and empty tuples or dicts an equal one of the same type (probed
    before counting)."""
    if not values or not isinstance(values, (list, tuple)):
        return False
    first = values[0]
    middle, last = values[len(values) // 2], values[-1]
    try:
        kind = type(first)
        if kind in _EQUAL_IS_SAME or (kind in _EMPTY_IS_SAME and not first):
            # An equal string made per batch (one day's date, say) is the same value.
            if type(value) is not type(first) or not (value == first == middle == last):
                return False
            return values.count(first) == len(values)
        if not (first is value and middle is value and last is value):
            return False
        return all(map(operator.is_, values, repeat(value)))
    except Exception:  # a value whose comparison fails or is not a bool: not one value
        return False


def _constant(values: Sequence[Any]) -> bool:
    """A column long enough to be worth it that holds one stored value throughout."""
    return len(values) >= 64 and holds_only(values, values[0])


def _column_array(name: str, values: Sequence[Any], field_type: pa.DataType) -> pa.Array:
    try:
        if name == "attributes":
            return _json_array(values)
        if name == "tags":
            return _tags_array(values, field_type)
        if name in ("events", "handled_errors"):
            return _struct_lists(values, field_type.value_type)
        if name in ("links", "ref_src", "ref_dest"):
            return _string_lists(values, field_type)
        return pa.array(values, field_type)
    except (TypeError, ValueError, pa.ArrowException):
        # Values of an unexpected shape (lists instead of tuples, dict events...): the
        # row-by-row path accepts anything pyarrow can convert.
        return _column_array_rowwise(name, values, field_type)


def _column_array_rowwise(name: str, values: Sequence[Any], field_type: pa.DataType) -> pa.Array:
    if name == "attributes":
        return pa.array([_json_text(dict(v)) for v in values], pa.string())
    if name == "tags":
        return pa.array([[(str(k), str(v)) for k, v in v.items()] for v in values], field_type)
    if name == "events":
        return pa.array([[_event_dict(e) for e in v] for v in values], field_type)
    if name == "handled_errors":
        return pa.array([[_as_dict(e) for e in v] for v in values], field_type)
    if name in ("links", "ref_src", "ref_dest"):
        return pa.array([list(v) for v in values], field_type)
    return pa.array(values, field_type)


def _as_dict(item: Any) -> dict[str, Any]:
    return dict(item._asdict()) if hasattr(item, "_asdict") else dict(item)


def _event_dict(event: Any) -> dict[str, Any]:
    values = _as_dict(event)
    values["attributes"] = _json_text(dict(values.get("attributes") or {}))
    return values


# Records transposed this many at a time. Below the GC's first threshold (700): each
# chunk's zip makes an iterator per record, and freeing them before the next chunk keeps
# the young generation's count from growing, so transposing sets off no collection
# (one zip over 4096 records set off one every ~800 rows: 1.3 µs per row with the GC on,
# 0.88 paused, 0.6 in chunks of 256 with it on). Small chunks also stay in the CPU cache.
_TRANSPOSE_CHUNK = 256


def transpose_records(records: Sequence[FinishedSpan]) -> list[Sequence[Any]]:
    """The records as columns (one sequence per ``SPAN_COLUMNS`` entry, same order)."""
    return _transpose(records, len(SPAN_COLUMNS))


def _transpose(rows: Sequence[Sequence[Any]], width: int) -> list[Sequence[Any]]:
    """Rows of ``width`` values as ``width`` lists, chunk by chunk (see _TRANSPOSE_CHUNK)."""
    if len(rows) <= _TRANSPOSE_CHUNK:
        return list(zip(*rows, strict=True)) if rows else [() for _ in range(width)]
    columns: list[list[Any]] = [[] for _ in range(width)]
    for start in range(0, len(rows), _TRANSPOSE_CHUNK):
        chunk = zip(*rows[start : start + _TRANSPOSE_CHUNK], strict=True)
        for column, values in zip(columns, chunk, strict=True):
            column += values
    return list(columns)


def records_to_table(
    records: Sequence[FinishedSpan], *, written_at: int | None = None, sort: bool = False
) -> pa.Table:
    """Convert span records to an Arrow table of ``SPAN_SCHEMA``.

    Columnar: the records are transposed once and each column is built in one call;
    nested columns (events, tags, lists) are built from flat child arrays and offsets
    rather than per-row dicts.

    Args:
        records: the spans, in any order.
        written_at: microseconds since the epoch to stamp on every row (the Parquet sink
            sets it at write time); ``None`` keeps each record's own value.
        sort: order the rows by ``(trace_id, start_time)``, the store's file order
            (stable: versions of one span keep their order).

    Returns:
        A table with exactly ``SPAN_SCHEMA``.
    """
    if not records:
        return SPAN_SCHEMA.empty_table()
    return columns_to_table(transpose_records(records), written_at=written_at, sort=sort)


def columns_to_table(
    columns: Sequence[Sequence[Any]],
    *,
    written_at: int | Sequence[int] | None = None,
    sort: bool = False,
) -> pa.Table:
    """Build a ``SPAN_SCHEMA`` table from columns of record values.

    Args:
        columns: one sequence per ``SPAN_COLUMNS`` entry, in that order, all of one
            length, holding what ``FinishedSpan`` fields hold (µs integers, dicts,
            tuples of ``Event``...), or a ``pa.Array`` of the field's type, used as it is.
        written_at: one stamp for every row, one per row, or ``None`` (the column's own).
        sort: order the rows by ``(trace_id, start_time)`` (stable).

    Returns:
        A table with exactly ``SPAN_SCHEMA``.
    """
    count = len(columns[0])
    if not count:
        return SPAN_SCHEMA.empty_table()
    arrays: list[pa.Array] = []
    constant: list[bool] = []
    for index, field in enumerate(SPAN_SCHEMA):
        values: Sequence[Any] = columns[index]
        if field.name == "written_at" and written_at is not None:
            if isinstance(written_at, int):
                arrays.append(pa.repeat(pa.scalar(written_at, field.type), count))
                constant.append(True)
            else:
                arrays.append(pa.array(written_at, pa.int64()).cast(field.type))
                constant.append(False)
            continue
        if isinstance(values, pa.Array):  # built by the caller (the receiver's typed path)
            arrays.append(values)
            constant.append(False)
            continue
        is_constant = _constant(values)
        constant.append(is_constant)
        if is_constant and pa.types.is_nested(field.type):
            # tags of one process, no links...: one row converted, then repeated
            one = _column_array(field.name, values[:1], field.type)
            arrays.append(one.take(pa.repeat(pa.scalar(0, pa.int32()), count)))
            continue
        if is_constant:
            try:  # namespace, date, app, host...: one value for the batch
                arrays.append(pa.repeat(pa.scalar(values[0], field.type), count))
                continue
            except (TypeError, ValueError, pa.ArrowException):
                pass  # the column's own path explains or converts it
        arrays.append(_column_array(field.name, values, field.type))
    if sort:
        import pyarrow.compute as pc  # here, not at import: a reader never needs it

        keys = pa.table([arrays[_TRACE_ID], arrays[_START_TIME]], names=["t", "s"])
        order = pc.sort_indices(keys, sort_keys=[("t", "ascending"), ("s", "ascending")])
        # A constant column reads the same in any order: only the others are gathered.
        arrays = [
            array if same else array.take(order)
            for array, same in zip(arrays, constant, strict=True)
        ]
    return pa.Table.from_arrays(arrays, schema=SPAN_SCHEMA)


_TRACE_ID = SPAN_COLUMNS.index("trace_id")
_START_TIME = SPAN_COLUMNS.index("start_time")


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic GC process-wide (the receiver's decoding, in its own process).

    Never inside a traced application: an application's own gc.disable() made meanwhile
    would be undone at the end. The table building above needs no pause (it sets off no
    collection: see ``_TRANSPOSE_CHUNK``). A child process forked meanwhile (by another
    thread) gets its GC enabled again.
    """
    global _paused
    was_enabled = gc.isenabled()
    if was_enabled:
        _paused = True  # up before the pause and down after it: never shorter
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
            _paused = False


# True while ``gc_paused`` has the GC off: a child forked then has no thread that will
# ever enable it again, so the fork hook does.
_paused = False


def _resume_gc_after_fork() -> None:
    global _paused
    if _paused:
        _paused = False
        gc.enable()


os.register_at_fork(after_in_child=_resume_gc_after_fork)


def _us(value: Any) -> int | None:
    """Arrow timestamps come back as datetimes from to_pylist; turn them into µs."""
    return None if value is None else us_from_datetime(value)


def _version(value: Any) -> int:
    """A file without the column predates versioning: count it as the first version."""
    return 1 if value is None else int(value)


def table_to_records(table: pa.Table) -> list[FinishedSpan]:
    """Convert an Arrow table (``SPAN_SCHEMA`` or an older, narrower version) to records.

    Columns missing from ``table`` take their defaults, so files written by an older
    schema version still read.
    """
    try:
        return _records_columnar(table)
    except (KeyError, TypeError, ValueError, pa.ArrowException):
        # Column types of another writer that the columnar path does not cast: go
        # row by row, which accepts whatever to_pylist produces.
        return _records_rowwise(table)


def _int_times(data_type: pa.DataType) -> pa.DataType:
    """``data_type`` with every timestamp (nested too) replaced by int64 microseconds."""
    if pa.types.is_timestamp(data_type):
        return pa.int64()
    if pa.types.is_list(data_type) or pa.types.is_large_list(data_type):
        return pa.list_(_int_times(data_type.value_type))
    if pa.types.is_struct(data_type):
        return pa.struct([field.with_type(_int_times(field.type)) for field in data_type])
    return data_type


# orjson parses integers beyond 64 bits as floats; such texts go through json instead.
_LONG_NUMBER = re.compile(r"\d{19}")


def _json_object(text: str | None) -> Any:
    if not text:
        return {}
    if _orjson is None or _LONG_NUMBER.search(text):
        return json.loads(text)
    return _orjson.loads(text)


def python_columns(columns: Sequence[Sequence[Any]]) -> list[Sequence[Any]]:
    """``SPAN_COLUMNS`` columns with their Arrow arrays (the receiver's typed and OTLP
    paths build some columns straight as arrays of their ``SPAN_SCHEMA`` type) turned
    back into record values: microseconds, attribute dicts, Event and HandledError
    tuples. Python sequences are kept as they are."""
    converted: list[Sequence[Any]] = []
    for name, column in zip(SPAN_COLUMNS, columns, strict=True):
        if not isinstance(column, pa.Array):
            converted.append(column)
        elif name == "attributes":
            converted.append(list(map(_json_object, column.to_pylist())))
        elif name in ("events", "handled_errors"):
            make = Event._make if name == "events" else HandledError._make
            items = list(map(make, zip(*_struct_values(column.values), strict=True)))
            offsets = column.offsets.to_pylist()
            converted.append([tuple(items[a:b]) for a, b in pairwise(offsets)])
        else:
            converted.append(column.cast(pa.int64()).to_pylist())
    return converted


def _struct_values(structs: pa.StructArray) -> list[list[Any]]:
    """The fields of a struct array as lists (times as microseconds, JSON as dicts)."""
    fields = []
    for index, child in enumerate(structs.type):
        values = structs.field(index)
        if child.name == "attributes":
            fields.append(list(map(_json_object, values.to_pylist())))
        elif child.name == "time":
            fields.append(values.cast(pa.int64()).to_pylist())
        else:
            fields.append(values.to_pylist())
    return fields


def _records_columnar(table: pa.Table) -> list[FinishedSpan]:
    """One ``to_pylist`` per column (timestamps as integers), then one pass over rows."""
    count = table.num_rows
    present = set(table.column_names)

    def column(name: str) -> list[Any]:
        if name not in present:
            return [None] * count
        values = table.column(name)
        if values.type != _int_times(values.type):
            values = values.cast(_int_times(values.type))
        return values.to_pylist()  # type: ignore[no-any-return]

    for name in ("trace_id", "span_id", "name", "status", "start_time"):
        if name not in present:
            raise KeyError(name)
    columns = [column(name) for name in SPAN_COLUMNS]
    records = []
    for row in zip(*columns, strict=True):
        (namespace, date, trace_id, span_id, parent_id, seq, name, kind, status, level,
         start_time, end_time, duration_us, file, line, function, app, app_version, host,
         pid, thread, task, tags, attributes, error_type, error_message, error_traceback,
         handled_errors, events, links, ref_src, ref_dest, written_at, schema_version,
         ) = row  # fmt: skip
        records.append(
            FinishedSpan(
                namespace or "default", date or "", trace_id, span_id, parent_id, seq or 0,
                name, kind or "internal", status, level or "INFO", start_time or 0, end_time,
                duration_us, file, line, function, app or "", app_version or "", host or "",
                pid or 0, thread or "", task, dict(tags) if tags else {},
                _json_object(attributes), error_type, error_message, error_traceback,
                tuple(
                    HandledError(e["time"] or 0, e["type"], e["message"], e["traceback"])
                    for e in handled_errors
                ) if handled_errors else (),
                tuple(
                    Event(
                        e["time"] or 0, e.get("seq") or 0, e["level"], e["logger"],
                        e["message"], e.get("file"), e.get("line"),
                        _json_object(e.get("attributes")),
                    )
                    for e in events
                ) if events else (),
                tuple(links) if links else (), tuple(ref_src) if ref_src else (),
                tuple(ref_dest) if ref_dest else (), written_at, _version(schema_version),
            )
        )  # fmt: skip
    return records


def _records_rowwise(table: pa.Table) -> list[FinishedSpan]:
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
            tags=dict(tags),
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
            schema_version=_version(row.get("schema_version")),
        )
        records.append(record)
    return records
