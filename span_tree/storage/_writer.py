"""Writing span files: one whole, sorted, zstd Parquet file per partition, atomically."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from operator import itemgetter
from typing import Any, NamedTuple

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from span_tree._atomic import write_file_atomic
from span_tree._record import SPAN_COLUMNS, FinishedSpan, utc_day
from span_tree.storage._layout import (
    batch_file_name,
    check_namespace,
    new_batch_id,
    new_file_name,
    safe_namespace,
)
from span_tree.storage._location import StoreLocation
from span_tree.storage.schema import (
    columns_to_table,
    holds_only,
    python_columns,
    transpose_records,
)

# Low-cardinality columns, where dictionary encoding pays; on the others (ids, messages,
# JSON) it costs time and, falling back to plain encoding, saves nothing.
DICTIONARY_COLUMNS = [
    "namespace", "date", "name", "kind", "status", "level", "file", "function", "app",
    "app_version", "host", "thread", "task", "tags.key_value.key", "tags.key_value.value",
    "error_type", "handled_errors.list.element.type", "events.list.element.level",
    "events.list.element.logger", "events.list.element.file", "schema_version",
]  # fmt: skip
# Columns queries filter on: their min/max statistics let readers skip row groups (seq:
# error_occurrences looks only at rows with seq = 0, which files written with seq lack).
STATISTICS_COLUMNS = [
    "trace_id", "span_id", "seq", "name", "status", "level", "start_time", "end_time",
    "duration_us", "app", "error_type", "written_at",
]  # fmt: skip
# Rows per row group: small enough that DuckDB skips most of a file when looking up
# one trace (rows are sorted by trace_id, so min/max statistics prune), large enough
# that zstd and dictionary encoding work well.
ROW_GROUP_ROWS = 65_536
COMPRESSION = "zstd"
SORT_KEYS = [("trace_id", "ascending"), ("start_time", "ascending")]

_PARTITION_KEY = itemgetter(0, 1)  # (namespace, date) of a FinishedSpan
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


_stamp_lock = threading.Lock()
_last_stamp = 0


def write_stamp() -> int:
    """Return a ``written_at`` (µs since the epoch), strictly increasing in this process.

    Strictly increasing so that two versions of one span written one after the other
    never tie, whatever the clock's resolution.
    """
    global _last_stamp
    with _stamp_lock:
        stamp = max(time.time_ns() // 1000, _last_stamp + 1)
        _last_stamp = stamp
        return stamp


class PreparedFile(NamedTuple):
    """One encoded span file, ready to put at ``<spans>/<relative_path>``."""

    relative_path: str  # namespace=<ns>/date=<YYYY-MM-DD>/<batch-id>.b.parquet
    data: bytes
    rows: int


def prepare_files(
    records: Sequence[FinishedSpan], *, batch_id: str | None = None
) -> list[PreparedFile]:
    """Encode span records as one Parquet file per (namespace, date), stamped and sorted.

    Every row gets ``written_at`` = now; when one span appears more than once in
    ``records`` (started, then finished), later occurrences get later stamps so the
    newest-version rule keeps the last one.

    Args:
        records: the batch.
        batch_id: the batch's identity (a KSUID chosen once, when the batch was
            formed). Every partition's file is then ``<batch_id>.b.parquet``, so putting
            the same batch again (retry, spool replay) replaces its files instead of
            adding rows. ``None``: a batch without identity (a client that sends none),
            written under a fresh legacy name that readers fully deduplicate.

    Raises:
        ValueError: ``batch_id`` is not a KSUID.
    """
    if not records:
        return []
    name = batch_file_name(batch_id) if batch_id is not None else new_file_name()
    stamp = write_stamp()
    prepared = []
    for (namespace, date), group in _group(records).items():
        table = _stamped_table(group, stamp)
        relative = f"namespace={check_namespace(namespace)}/date={date}/{name}"
        prepared.append(PreparedFile(relative, table_bytes(table), table.num_rows))
    return prepared


def prepare_column_files(
    columns: Sequence[Sequence[Any]], *, batch_id: str | None = None
) -> list[PreparedFile]:
    """``prepare_files`` for spans given as columns (one per ``SPAN_COLUMNS`` entry).

    The receiver's path: its validator produces columns, so Arrow arrays are built from
    them directly, without one record tuple per span and a transposition back.

    Raises:
        ValueError: ``batch_id`` is not a KSUID.
    """
    if not columns or not columns[0]:
        return []
    namespaces, dates = columns[_NAMESPACE], columns[_DATE_COLUMN]
    one_namespace = holds_only(namespaces, namespaces[0])
    if one_namespace and holds_only(dates, dates[0]) and len(namespaces) == len(dates):
        partitions = {(namespaces[0], dates[0])}  # the usual batch, without a pair per row
    else:
        partitions = set(zip(namespaces, dates, strict=True))
    namespace, date = next(iter(partitions))
    if len(partitions) > 1 or not _DATE.fullmatch(date) or safe_namespace(namespace) != namespace:
        # Several days (or a name to clean): the records path groups and cleans.
        records = list(map(FinishedSpan._make, zip(*python_columns(columns), strict=True)))
        return prepare_files(records, batch_id=batch_id)
    name = batch_file_name(batch_id) if batch_id is not None else new_file_name()
    table = stamped_columns_table(columns, write_stamp())
    relative = f"namespace={check_namespace(namespace)}/date={date}/{name}"
    return [PreparedFile(relative, table_bytes(table), table.num_rows)]


def put_prepared(location: StoreLocation, prepared: PreparedFile) -> str:
    """Put one prepared file into the store atomically; return its fs path."""
    path = f"{location.spans_root}/{prepared.relative_path}"
    write_bytes_atomic(location, path, prepared.data)
    return path


def write_spans(
    location: StoreLocation, records: Sequence[FinishedSpan], *, batch_id: str | None = None
) -> list[str]:
    """Write span records into the store, one file per (namespace, date).

    Each file is complete before it becomes visible (temporary name then rename on a
    local disk, one PUT on an object store), rows are sorted by ``(trace_id,
    start_time)``, and every row is stamped with ``written_at``. When one span appears
    more than once in ``records`` (started, then finished), later occurrences get later
    stamps so the newest-version rule keeps the last one.

    Args:
        location: the store (see ``open_store``).
        records: span versions in the order they were produced.
        batch_id: the batch's identity (default: a fresh KSUID): writing the same
            records again with the same id replaces the files, it adds no rows.

    Returns:
        The fs paths of the files written.

    Raises:
        OSError: the store could not be written (nothing partial is left visible).
    """
    batch = batch_id or new_batch_id()
    return [put_prepared(location, prepared) for prepared in prepare_files(records, batch_id=batch)]


def _group(records: Sequence[FinishedSpan]) -> dict[tuple[str, str], Sequence[FinishedSpan]]:
    keys = set(map(_PARTITION_KEY, records))
    if not all(_DATE.fullmatch(date) for _, date in keys):
        # A record made by hand with a missing or malformed date would land in a
        # partition readers reject: derive the date from start_time, as the core does.
        records = [
            r if _DATE.fullmatch(r.date) else r._replace(date=utc_day(r.start_time))
            for r in records
        ]
        keys = set(map(_PARTITION_KEY, records))
    groups: dict[tuple[str, str], Sequence[FinishedSpan]]
    if len(keys) == 1:  # the usual batch: one namespace, one day; no copy
        groups = {keys.pop(): records}
    else:
        lists: dict[tuple[str, str], list[FinishedSpan]] = {key: [] for key in keys}
        for record in records:
            lists[(record.namespace, record.date)].append(record)
        groups = dict(lists)
    if all(safe_namespace(namespace) == namespace for namespace, _ in groups):
        return groups
    # Rare: a namespace that is not a safe directory name; store it under its safe form
    # in the path and in the rows alike, so both always agree.
    cleaned: dict[tuple[str, str], Sequence[FinishedSpan]] = {}
    for (namespace, date), group in groups.items():
        safe = safe_namespace(namespace)
        fixed = group if safe == namespace else [r._replace(namespace=safe) for r in group]
        cleaned[(safe, date)] = [*cleaned.get((safe, date), ()), *fixed]
    return cleaned


def _stamped_table(records: Sequence[FinishedSpan], stamp: int) -> pa.Table:
    # Converted in arrival order, then sorted by Arrow: reordering the Python records
    # first would make the column transposition walk memory at random (measured slower).
    return stamped_columns_table(transpose_records(records), stamp)


def stamped_columns_table(columns: Sequence[Sequence[Any]], stamp: int) -> pa.Table:
    """A sorted table of span columns (``SPAN_COLUMNS`` order), every row stamped.

    Rows sharing a span id (started, then finished) get ``stamp``, ``stamp + 1``... in
    arrival order, so the newest-version rule keeps the last one.
    """
    span_ids = columns[_SPAN_ID]
    written_at: int | list[int] = stamp
    if len(set(span_ids)) != len(span_ids):
        written_at = _version_stamps(span_ids, stamp)
    # A stable sort: versions of one span keep their arrival order.
    return columns_to_table(columns, written_at=written_at, sort=True)


_SPAN_ID = SPAN_COLUMNS.index("span_id")
_NAMESPACE = SPAN_COLUMNS.index("namespace")
_DATE_COLUMN = SPAN_COLUMNS.index("date")


def _version_stamps(span_ids: Iterable[str], stamp: int) -> list[int]:
    """Stamp the n-th occurrence of a span id with ``stamp + n`` microseconds."""
    global _last_stamp
    seen: dict[str, int] = {}
    stamps = []
    for span_id in span_ids:
        occurrence = seen.get(span_id, 0)
        seen[span_id] = occurrence + 1
        stamps.append(stamp + occurrence)
    with _stamp_lock:
        _last_stamp = max(_last_stamp, stamp + max(seen.values()))
    return stamps


def sort_table(table: pa.Table) -> pa.Table:
    """Sort rows by ``(trace_id, start_time)``, the store's file order."""
    indices = pc.sort_indices(table, sort_keys=SORT_KEYS)
    return table.take(indices)


def table_bytes(table: pa.Table, *, footer: Mapping[bytes, bytes] | None = None) -> bytes:
    """Encode a span table as one Parquet file (zstd, row groups for pruning).

    Args:
        table: the rows.
        footer: key-value metadata for the file footer only (schema metadata would also
            be copied into the serialized Arrow schema: twice the bytes to read).
    """
    sink = pa.BufferOutputStream()
    with pq.ParquetWriter(
        sink,
        table.schema,
        compression=COMPRESSION,
        use_dictionary=DICTIONARY_COLUMNS,
        write_statistics=STATISTICS_COLUMNS,
        sorting_columns=_sorting_columns(table.schema),
        write_batch_size=ROW_GROUP_ROWS,
    ) as writer:
        # One row group's values per write batch (default 1,024): the same bytes, less
        # per-batch work in the encoder.
        writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
        if footer:
            writer.add_key_value_metadata(dict(footer))
    return bytes(sink.getvalue())


def _sorting_columns(schema: pa.Schema) -> Any:
    return [
        pq.SortingColumn(schema.get_field_index(name))
        for name, _ in SORT_KEYS
        if schema.get_field_index(name) >= 0
    ]


def write_table_atomic(
    location: StoreLocation,
    table: pa.Table,
    path: str,
    *,
    footer: Mapping[bytes, bytes] | None = None,
) -> None:
    """Write ``table`` to ``path`` so that readers see either nothing or the whole file."""
    write_bytes_atomic(location, path, table_bytes(table, footer=footer))


def write_bytes_atomic(location: StoreLocation, path: str, data: bytes) -> None:
    """Put ``data`` at ``path`` atomically.

    Local: written under a hidden temporary name in the same directory, fsynced, then
    renamed (atomic on POSIX); a crash leaves only a hidden temporary file that readers
    ignore. Object stores: one PUT of the whole object (never visible half-written).
    """
    if location.is_local:
        write_file_atomic(path, data)
        return
    location.fs.pipe_file(path, data)
