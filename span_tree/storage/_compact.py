"""``compact``: merge the small files of each partition into larger ones.

Safe while writers write: only files older than a safety age are merged, new files
are never touched (writers only ever add files). Every row is kept as it is,
``written_at`` included, so the newest-version rule gives the same answer afterwards.
A merged file records the names of the files it replaces in its footer; readers
(``span_files``) ignore replaced files from the moment it exists, so a crash between
writing it and deleting them never shows a row twice.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial

import pyarrow as pa
import pyarrow.parquet as pq

from span_tree._atomic import TEMP_PREFIX
from span_tree.schema import SPAN_SCHEMA
from span_tree.storage._files import (
    REPLACES_KEY,
    SpanFiles,
    compatible,
    span_files,
)
from span_tree.storage._layout import (
    LEGACY,
    Partition,
    compacted_file_name,
    file_kind,
    list_partitions,
    name_time,
)
from span_tree.storage._listing import LEGACY_KEY, list_partition
from span_tree.storage._location import StoreLocation
from span_tree.storage._writer import sort_table, write_table_atomic

DEFAULT_MIN_AGE = 300.0
DEFAULT_TARGET_ROWS = 1_000_000
# A temporary file this old belongs to a writer that died mid-write.
STALE_TEMP_AGE = 3600.0


@dataclass
class CompactResult:
    """What a compaction did."""

    partitions: int = 0
    files_in: int = 0
    files_out: int = 0
    rows: int = 0
    removed_replaced: int = 0
    removed_temporary: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)


def compact(
    location: StoreLocation,
    *,
    namespace: str | None = None,
    before: str | None = None,
    min_age: float = DEFAULT_MIN_AGE,
    target_rows: int = DEFAULT_TARGET_ROWS,
    workers: int | None = None,
    on_partition: Callable[[Partition], None] | None = None,
) -> CompactResult:
    """Merge small span files per partition.

    Run one compaction per store at a time (writers may run alongside freely).

    Args:
        location: the store.
        namespace: only this namespace.
        before: only partitions whose date (``YYYY-MM-DD``) is earlier than this.
        min_age: seconds; files younger than this (by their KSUID name) are left alone.
        target_rows: rows per merged file at most; files with this many rows or more
            are already large and stay as they are.
        workers: merged files built at once (threads: reading, sorting and encoding
            Parquet release the GIL); default: up to 4, one per CPU.
        on_partition: called after each partition (progress reporting).

    Returns:
        Counts of partitions, files merged and written, rows, files cleaned up.
    """
    result = CompactResult()
    now = time.time()
    threads = workers or min(4, os.cpu_count() or 1)
    # One listing per namespace, not per partition (a year of days would list the
    # namespace 365 times). Files written after it are younger than the cut-off anyway
    # (or wait for the next run); merges only touch the partition being planned.
    listings: dict[str, SpanFiles] = {}
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="span_tree-compact") as pool:
        for partition in list_partitions(location, namespace=namespace):
            if before is not None and partition.date >= before:
                continue
            if partition.namespace not in listings:
                listings[partition.namespace] = span_files(location, namespace=partition.namespace)
            listed = listings[partition.namespace]
            groups = _plan_partition(
                location, partition, listed, now - min_age, target_rows, result
            )
            if groups:
                result.partitions += 1
            merged = pool.map(partial(_merge, location, partition), groups)
            for outcome in merged:
                result.files_in += outcome.files_in
                result.files_out += outcome.files_out
                result.rows += outcome.rows
                result.skipped.extend(outcome.skipped)
            if on_partition is not None:
                on_partition(partition)
    return result


def _plan_partition(
    location: StoreLocation,
    partition: Partition,
    listed: SpanFiles,
    cutoff: float,
    target_rows: int,
    result: CompactResult,
) -> list[list[str]]:
    """Clean up a partition and return the groups of files to merge."""
    fs = location.fs
    in_partition = [path for path in listed.files if path.startswith(partition.path + "/")]
    state = list_partition(location, partition.path)
    for name in sorted((state.covered & set(state.sizes)) | set(state.rejected())):
        with contextlib.suppress(FileNotFoundError):
            fs.rm_file(f"{partition.path}/{name}")
            result.removed_replaced += 1
    result.removed_temporary += _remove_stale_temporaries(location, partition)
    candidates: list[tuple[str, int]] = []
    for path in in_partition:
        created = _created_at(path)
        if created is None or created > cutoff:
            continue  # too new, or not named by us: never touched
        try:
            with fs.open(path, "rb") as handle:
                rows = pq.ParquetFile(handle).metadata.num_rows
        except Exception as error:  # vanished or unreadable since listing
            result.skipped.append((path, repr(error)))
            continue
        if rows < target_rows:
            candidates.append((path, rows))
    return _groups(candidates, target_rows)


def _groups(candidates: Sequence[tuple[str, int]], target_rows: int) -> list[list[str]]:
    """Consecutive (time-ordered) files adding up to at most ``target_rows`` each."""
    groups: list[list[str]] = []
    current: list[str] = []
    total = 0
    for path, rows in candidates:
        if current and total + rows > target_rows:
            groups.append(current)
            current, total = [], 0
        current.append(path)
        total += rows
    if current:
        groups.append(current)
    return [group for group in groups if len(group) > 1]


def _merge(location: StoreLocation, partition: Partition, group: list[str]) -> CompactResult:
    """Merge one group of files into one; the inputs are deleted only once it is whole."""
    result = CompactResult()
    tables = []
    merged_paths = []
    for path in group:
        try:
            tables.append(conform(read_span_file(location, path)))
        except Exception as error:  # leave a file we cannot convert exactly as it is
            result.skipped.append((path, repr(error)))
            continue
        merged_paths.append(path)
    if len(merged_paths) < 2:
        return result
    # One chunk before sorting: taking rows across hundreds of chunks is several
    # times slower than from one contiguous table.
    table = sort_table(pa.concat_tables(tables).combine_chunks())
    names = ",".join(path.rpartition("/")[2] for path in merged_paths)
    metadata = dict(SPAN_SCHEMA.metadata or {})
    metadata[REPLACES_KEY] = names.encode()
    legacy = any(file_kind(path.rpartition("/")[2]) == LEGACY for path in merged_paths)
    metadata[LEGACY_KEY] = b"1" if legacy else b"0"
    table = table.replace_schema_metadata(metadata)
    output = f"{partition.path}/{compacted_file_name()}"
    write_table_atomic(location, table, output)
    with location.fs.open(output, "rb") as handle:
        written = pq.ParquetFile(handle).metadata.num_rows
    if written != table.num_rows:  # never delete inputs unless the output holds them all
        raise OSError(f"compacted file {output} has {written} rows, expected {table.num_rows}")
    for path in merged_paths:
        with contextlib.suppress(FileNotFoundError):
            location.fs.rm_file(path)
    result.files_in += len(merged_paths)
    result.files_out += 1
    result.rows += table.num_rows
    return result


def read_span_file(location: StoreLocation, path: str) -> pa.Table:
    """Read one whole span file (``ParquetFile.read``: no dataset discovery overhead)."""
    if location.is_local:
        return pq.ParquetFile(path).read()
    with location.fs.open(path, "rb") as handle:
        return pq.ParquetFile(handle).read()


def conform(table: pa.Table) -> pa.Table:
    """Return ``table`` with exactly ``SPAN_SCHEMA``: missing columns null, types cast.

    Older schema versions lack some columns; other writers may use large strings.

    Raises:
        ValueError: a column cannot be converted to its ``SPAN_SCHEMA`` type.
    """
    arrays = []
    for span_field in SPAN_SCHEMA:
        index = table.schema.get_field_index(span_field.name)
        if index < 0:
            arrays.append(pa.nulls(table.num_rows, span_field.type))
            continue
        column = table.column(index)
        if column.type != span_field.type:
            if not compatible(column.type, span_field.type):
                raise ValueError(f"column {span_field.name} has type {column.type}")
            try:
                column = column.cast(span_field.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
                raise ValueError(f"column {span_field.name}: {error}") from error
        arrays.append(column)
    return pa.Table.from_arrays(arrays, schema=SPAN_SCHEMA)


def _created_at(path: str) -> float | None:
    """The creation time encoded in a KSUID file name; None for other names."""
    return name_time(path.rpartition("/")[2])


def _remove_stale_temporaries(location: StoreLocation, partition: Partition) -> int:
    if not location.is_local or not os.path.isdir(partition.path):
        return 0
    removed = 0
    for name in os.listdir(partition.path):
        path = os.path.join(partition.path, name)
        if not name.startswith(TEMP_PREFIX):
            continue
        with contextlib.suppress(OSError):
            if time.time() - os.path.getmtime(path) > STALE_TEMP_AGE:
                os.remove(path)
                removed += 1
    return removed
