"""``compact``: merge the small files of each partition into larger ones, safely in company.

Safe while writers write, while readers read, alongside other compactors, and across
a crash (SIGKILL) at any point. The protocol (the rule readers apply is
``_listing.resolve_compacted``):

1. Plan from a fresh listing of the partition: merge only files readers read now
   (accepted compacted files and uncovered ordinary files) that are older than
   ``min_age`` by their name.
2. Write the merged rows (newest version of each span only, see ``newest_versions``)
   as a new ``<ksuid>.c.parquet`` whose footer names every file it replaces (its
   inputs and, transitively, theirs). It appears atomically; inputs are NOT deleted.
   An output not published within ``publish_window`` of its plan is abandoned.
3. A later pass deletes, for each accepted compacted file whose name is older than
   ``grace`` and that no other compacted file overlaps, the files it covers; and each
   losing compacted file once a winner over it is older than ``grace``.

So a crash leaves either nothing new, or a complete output that readers take instead
of its inputs; two overlapping outputs resolve to exactly one for every reader; a
reader holding a file list up to ``grace`` old never finds a file gone; and a retried
batch written again under a covered name stays covered (then is deleted). Deleting
waits until no plan that predates a winner can still publish (``publish_window`` is
well under ``grace``; clocks of compacting machines must agree within the rest).
"""

from __future__ import annotations

import contextlib
import functools
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from span_tree._atomic import TEMP_PREFIX
from span_tree.storage._files import compatible
from span_tree.storage._layout import (
    LEGACY,
    Partition,
    compacted_file_name,
    file_kind,
    list_partitions,
    name_time,
)
from span_tree.storage._listing import (
    LEGACY_KEY,
    REPLACES_KEY,
    PartitionListing,
    list_partition,
    resolve_compacted,
)
from span_tree.storage._location import StoreLocation
from span_tree.storage._writer import sort_table, table_bytes, write_table_atomic
from span_tree.storage.schema import SPAN_SCHEMA

DEFAULT_MIN_AGE = 300.0
DEFAULT_TARGET_ROWS = 1_000_000
# Replaced inputs and losing outputs stay this long after the file that replaced them
# appeared: a reader's file list may be this old, and no plan older than it publishes.
DEFAULT_GRACE = 600.0
# A temporary file this old belongs to a writer that died mid-write.
STALE_TEMP_AGE = 3600.0


@dataclass
class CompactResult:
    """What a compaction did."""

    partitions: int = 0
    files_in: int = 0
    files_out: int = 0
    rows: int = 0
    rows_dropped: int = 0  # superseded versions (a started row of a finished span...)
    removed_replaced: int = 0
    removed_temporary: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)

    def add(self, other: CompactResult) -> None:
        """Add ``other``'s counts to this one."""
        self.files_in += other.files_in
        self.files_out += other.files_out
        self.rows += other.rows
        self.rows_dropped += other.rows_dropped
        self.removed_replaced += other.removed_replaced
        self.removed_temporary += other.removed_temporary
        self.skipped.extend(other.skipped)


def compact(
    location: StoreLocation,
    *,
    namespace: str | None = None,
    before: str | None = None,
    min_age: float = DEFAULT_MIN_AGE,
    target_rows: int = DEFAULT_TARGET_ROWS,
    workers: int | None = None,
    on_partition: Callable[[Partition], None] | None = None,
    grace: float = DEFAULT_GRACE,
    min_files: int = 2,
    partitions: Sequence[Partition] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    read_with_duckdb: bool = True,
) -> CompactResult:
    """Merge small span files per partition (any number of compactors may run at once).

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
        grace: seconds a replaced file stays after the file replacing it appeared;
            a merge publishes within ``grace / 2`` of its plan or not at all. 0: only
            for a store with one compactor at a time (tests).
        min_files: merge a partition only when it has at least this many small files.
        partitions: these partitions instead of listing the store.
        should_stop: checked between partitions and merges (a service shutting down).
        read_with_duckdb: read a group of small local files in one DuckDB scan (see
            ``_read_bulk``); False keeps DuckDB out of the process (a traced service's
            own sink compacting its files).

    Returns:
        Counts of partitions, files merged and written, rows, files cleaned up.
    """
    result = CompactResult()
    threads = workers or min(4, os.cpu_count() or 1)
    if partitions is None:
        partitions = list_partitions(location, namespace=namespace)
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="span_tree-compact") as pool:
        for partition in partitions:
            if should_stop():
                break
            if before is not None and partition.date >= before:
                continue
            planned_at = time.time()
            state = list_partition(location, partition.path)
            state = _clean_up(location, state, planned_at, grace, result)
            result.removed_temporary += _remove_stale_temporaries(location, partition)
            standard: set[str] = set()
            groups = _plan(
                location, state, planned_at - min_age, target_rows, min_files, result, standard
            )
            if groups:
                result.partitions += 1
            # grace 0 (tests, a store with one compactor): no deletion waits, no window.
            window = grace / 2 if grace > 0 else float("inf")
            bulk_readable = standard if read_with_duckdb else set()
            merge = partial(
                _merge, location, state, planned_at, window, should_stop, threads, bulk_readable
            )
            for outcome in pool.map(merge, groups):
                result.add(outcome)
            if on_partition is not None:
                on_partition(partition)
    return result


def _clean_up(
    location: StoreLocation,
    state: PartitionListing,
    now: float,
    grace: float,
    result: CompactResult,
) -> PartitionListing:
    """Delete losing outputs, then covered files, once their winner is older than ``grace``.

    Returns the partition as it is after the deletions.
    """
    old_enough = {name for name in state.accepted if (name_time(name) or now) <= now - grace}
    losers = [
        name
        for name in state.rejected()
        if name not in state.covered and any(_overlap(state, name, winner) for winner in old_enough)
    ]
    for name in losers:
        _delete(location, state, name, result)
    if losers:
        state = _without(state, set(losers))
    for winner in sorted(old_enough):
        if winner not in state.accepted:
            continue
        if any(_overlap(state, winner, other) for other in state.compacted if other != winner):
            continue  # a competitor is still around: decide nothing yet
        gone = {name for name in state.compacted[winner].replaces if name in state.sizes}
        for name in sorted(gone):
            _delete(location, state, name, result)
        if gone:
            state = _without(state, gone)
    return state


def _overlap(state: PartitionListing, first: str, second: str) -> bool:
    """True when two compacted files hold some rows of the same files, neither holding the other."""
    one, other = state.compacted[first].replaces, state.compacted[second].replaces
    if first in other or second in one:
        return False
    return not one.isdisjoint(other)


def _without(state: PartitionListing, names: set[str]) -> PartitionListing:
    sizes = {name: size for name, size in state.sizes.items() if name not in names}
    compacted = {name: info for name, info in state.compacted.items() if name not in names}
    accepted, covered = resolve_compacted({n: i.replaces for n, i in compacted.items()})
    return PartitionListing(state.directory, sizes, compacted, accepted, covered, state.problems)


def _delete(
    location: StoreLocation, state: PartitionListing, name: str, result: CompactResult
) -> None:
    with contextlib.suppress(FileNotFoundError):
        location.fs.rm_file(f"{state.directory}/{name}")
        result.removed_replaced += 1


def _plan(
    location: StoreLocation,
    state: PartitionListing,
    cutoff: float,
    target_rows: int,
    min_files: int,
    result: CompactResult,
    standard: set[str],
) -> list[list[str]]:
    """The groups of readable files to merge (time-ordered, up to ``target_rows`` each).

    Adds to ``standard`` the candidates whose Parquet schema is exactly the one this
    version writes (those may be read in bulk).
    """
    old = [
        name
        for name in state.readable()
        # too new, or not named by us: never touched
        if (created := name_time(name)) is not None and created <= cutoff
    ]
    if len(old) < max(2, min_files):
        return []
    candidates: list[tuple[str, int]] = []
    for name in old:
        path = f"{state.directory}/{name}"
        try:
            rows, current = _footer_facts(location, path)
        except Exception as error:  # vanished or unreadable: leave it to the readers
            result.skipped.append((location.url_of(path), _short(error)))
            continue
        if rows < target_rows:
            candidates.append((name, rows))
            if current:
                standard.add(name)
    if len(candidates) < max(2, min_files):
        return []
    return _groups(candidates, target_rows)


def _groups(candidates: Sequence[tuple[str, int]], target_rows: int) -> list[list[str]]:
    """Consecutive (time-ordered) files adding up to at most ``target_rows`` each."""
    groups: list[list[str]] = []
    current: list[str] = []
    total = 0
    for name, rows in sorted(candidates, key=lambda item: (name_time(item[0]) or 0, item[0])):
        if current and total + rows > target_rows:
            groups.append(current)
            current, total = [], 0
        current.append(name)
        total += rows
    if current:
        groups.append(current)
    return [group for group in groups if len(group) > 1]


def _merge(
    location: StoreLocation,
    state: PartitionListing,
    planned_at: float,
    publish_window: float,
    should_stop: Callable[[], bool],
    readers: int,
    standard: set[str],
    group: list[str],
) -> CompactResult:
    """Merge one group into one new compacted file; the inputs stay (a later pass deletes)."""
    result = CompactResult()
    if should_stop():
        return result
    tables: list[pa.Table] = []
    merged: list[str] = []
    bulk = None
    if standard.issuperset(group):
        bulk = _read_bulk(location, state.directory, group, readers)
    if bulk is not None:
        tables, merged = [bulk], list(group)
    else:
        outcomes = _read_each(location, state.directory, group, readers)
        for name, outcome in zip(group, outcomes, strict=True):
            if isinstance(outcome, str):
                result.skipped.append((location.url_of(f"{state.directory}/{name}"), outcome))
                continue
            tables.append(outcome)
            merged.append(name)
        del outcomes
    if len(merged) < 2:
        return result
    # One chunk before sorting: taking rows across hundreds of chunks is several
    # times slower than from one contiguous table.
    table = pa.concat_tables(tables).combine_chunks()
    del tables
    rows_in = table.num_rows
    table = sort_table(newest_versions(table))
    replaces: set[str] = set(merged)
    legacy = False
    for name in merged:
        info = state.compacted.get(name)
        if info is not None:
            replaces |= info.replaces
            legacy = legacy or info.legacy
        else:
            legacy = legacy or file_kind(name) == LEGACY
    footer = {
        REPLACES_KEY: ",".join(sorted(replaces)).encode(),
        LEGACY_KEY: b"1" if legacy else b"0",
    }
    if time.time() - planned_at > publish_window:
        # Too late: a deletion pass may already trust that no plan this old publishes.
        result.skipped.append((location.url_of(state.directory), "merge took too long"))
        return result
    output = f"{state.directory}/{compacted_file_name()}"
    write_table_atomic(location, table, output, footer=footer)
    result.files_in += len(merged)
    result.files_out += 1
    result.rows += table.num_rows
    result.rows_dropped += rows_in - table.num_rows
    return result


# Fewer files than this are read one by one: DuckDB's start-up would cost more than it saves.
_BULK_MIN_FILES = 8


def _read_bulk(
    location: StoreLocation, directory: str, group: list[str], threads: int
) -> pa.Table | None:
    """All of a group's files in one DuckDB scan, or ``None`` (then read one by one).

    Decoding the nested schema costs a small file ~3 ms of CPU with pyarrow and about
    half that in one DuckDB ``read_parquet`` over the list (benchmarks/store_write.py,
    compact_tiny_files). Only for local files whose footer schema is exactly the one
    this version writes, so DuckDB neither unions nor casts what the file-by-file read
    would refuse. Any failure (a corrupt or vanished file) returns ``None``: the
    file-by-file read then skips and reports exactly the bad files.
    """
    if not location.is_local or len(group) < _BULK_MIN_FILES:
        return None
    import duckdb

    paths = [f"{directory}/{name}" for name in group]
    try:
        # threads=1 runs the scan on this thread only (a background compactor's low
        # priority holds).
        with duckdb.connect(config={"threads": threads}) as con:
            con.execute("SET enable_progress_bar = false")  # a long merge prints none
            table = con.sql(
                "SELECT * FROM read_parquet(?, hive_partitioning = false)", params=[paths]
            ).to_arrow_table()
        return conform(table)
    except Exception:  # any failure: the file-by-file read explains it
        return None


def _read_each(
    location: StoreLocation, directory: str, group: list[str], readers: int
) -> list[pa.Table | str]:
    """Each file of a group read on its own: its table, or why it cannot be merged."""

    def read(name: str) -> pa.Table | str:
        try:
            return conform(read_span_file(location, f"{directory}/{name}"))
        except Exception as error:  # leave a file we cannot convert exactly as it is
            return _short(error)

    # Small files cost ~3 ms of CPU each to decode (the nested schema), most of it
    # with the GIL released: read them on several threads.
    if readers > 1 and len(group) > 8:
        with ThreadPoolExecutor(readers, thread_name_prefix="span_tree-compact-read") as pool:
            return list(pool.map(read, group))
    return [read(name) for name in group]


def newest_versions(table: pa.Table) -> pa.Table:
    """Keep one row per span: its newest version (the rule of ``queries/spans.sql``).

    Per ``(namespace, date, trace_id, span_id)``: a finished version before a
    ``started`` one, then the newest ``written_at`` (nulls last). A table without a
    repeated span id is returned as it is.
    """
    span_ids = table.column("span_id")
    if pc.count_distinct(span_ids, mode="all").as_py() == table.num_rows:
        return table
    status = pc.fill_null(table.column("status"), "")
    rank = pc.if_else(
        pc.equal(table.column("status"), "started"), 1, pc.if_else(pc.equal(status, ""), 0, 2)
    )
    rank = pc.fill_null(rank, 0)
    keys = ["namespace", "date", "trace_id", "span_id"]
    ranked = table.select(keys).append_column("__rank", rank)
    ranked = ranked.append_column("__written", table.column("written_at"))
    order = pc.sort_indices(
        ranked,
        sort_keys=[
            *((key, "ascending") for key in keys),
            ("__rank", "descending"),
            ("__written", "descending"),
        ],
    )  # fmt: skip (nulls sort last: Arrow's default)
    ordered = ranked.take(order)
    # A row is kept when any key differs from the row before it (the first of its span).
    repeated = None
    for key in keys:
        column = pc.fill_null(ordered.column(key).combine_chunks(), "")
        same = pc.equal(column[1:], column[:-1])
        repeated = same if repeated is None else pc.and_(repeated, same)
    keep = pa.concat_arrays([pa.array([True]), pc.invert(repeated)])
    return table.take(pc.filter(order, keep))


def _footer_facts(location: StoreLocation, path: str) -> tuple[int, bool]:
    """A file's row count, and whether its Parquet schema is the one this version writes."""
    # read_metadata: the footer only (a ParquetFile also maps every nested column).
    if location.is_local:
        metadata = pq.read_metadata(path)
    else:
        with location.fs.open(path, "rb") as handle:
            metadata = pq.read_metadata(handle)
    return int(metadata.num_rows), metadata.schema.equals(_written_schema())


@functools.cache
def _written_schema() -> pq.ParquetSchema:
    """The Parquet schema of the span files this version writes."""
    empty = table_bytes(SPAN_SCHEMA.empty_table())
    return pq.read_metadata(pa.BufferReader(empty)).schema


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


def _short(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
