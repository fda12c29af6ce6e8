"""The Parquet sink: buffers span versions and writes them as files into a store.

The sink is passive: it is called on the processor's worker thread only (``export``,
and ``tick`` on each of the worker's wake-ups, which writes a buffer that reached its
age), so a slow or failing store delays that thread, never the traced application.
Writes are retried with backoff, then the store counts as down for a while and files
go to a bounded local spool, replayed when the store is back (``sinks._delivery``, shared
with the HTTP sink); spans that fit nowhere are counted in ``stats()``
(``span_tree.stats()``).
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from itertools import chain
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from span_tree._record import (
    SPAN_COLUMNS,
    FinishedSpan,
    columns_from_records,
    records_from_columns,
)
from span_tree._sanitize import encodable
from span_tree._spool_dir import default_spool_dir
from span_tree.sinks._delivery import (
    DONE,
    RETRY,
    BoundedCaller,
    Outcome,
    Retry,
    Spool,
    give_up,
)
from span_tree.storage._auto import AutoCompactor
from span_tree.storage._layout import new_batch_id
from span_tree.storage._location import open_store
from span_tree.storage._writer import (
    PreparedFile,
    prepare_column_files,
    prepare_files,
    put_prepared,
)
from span_tree.storage.schema import holds_only, records_to_table

DEFAULT_SPOOL_BYTES = 256 * 1024 * 1024

# A rough per-span size estimate, so the byte limit costs nothing per span.
_SPAN_BYTES = 320
_EVENT_BYTES = 160


class ParquetSink:
    """Writes spans into a Parquet store (a local folder or any fsspec URL).

    Args:
        store: store path or fsspec URL (``~/.spantree``, ``s3://bucket/prefix``).
        storage_options: fsspec options for ``store``.
        max_rows: write a file once this many span versions are buffered.
        max_bytes: write once the buffered spans are estimated to take this many bytes.
        max_age: write once the oldest buffered span waited this many seconds.
        spool_dir: where files wait while the store is unreachable (default: one
            directory per store under ``SPANTREE_SPOOL_DIR``, else
            ``~/.cache/spantree/spool``, else the temp directory).
        spool_max_bytes: the spool's size limit; beyond it spans are lost and counted.
        retries: write attempts per file before the store is considered down.
        backoff: seconds before the first retry; doubles on each further retry.
        down_delay: seconds to wait before trying a down store again (doubles up to
            ``max_down_delay`` while it stays down).
        max_down_delay: the longest wait between two attempts on a down store.
        put_timeout: seconds one file write may take before the store counts as down
            (the file goes to the spool; flushes are also bounded by their timeout).
        compact_interval: seconds between background compactions of the namespaces
            this sink writes (the first one a minute after start, on a low-priority
            thread; safe alongside other compactors); ``None``: never.
        compact_min_age: files younger than this are left to a later compaction.

    Raises:
        ValueError: ``store`` is not a path or a known fsspec URL.
    """

    def __init__(
        self,
        store: str,
        *,
        storage_options: Mapping[str, Any] | None = None,
        max_rows: int = 100_000,
        max_bytes: int = 64 * 1024 * 1024,
        max_age: float = 10.0,
        spool_dir: str | None = None,
        spool_max_bytes: int = DEFAULT_SPOOL_BYTES,
        retries: int = 3,
        backoff: float = 0.2,
        down_delay: float = 1.0,
        max_down_delay: float = 60.0,
        put_timeout: float = 30.0,
        compact_interval: float | None = 600.0,
        compact_min_age: float = 300.0,
    ) -> None:
        self.location = open_store(store, storage_options=storage_options)
        self.spool = Spool(
            spool_dir or default_spool_dir(self.location.url),
            suffix=".parquet",
            max_bytes=spool_max_bytes,
        )
        self._max_rows = max_rows
        self._max_bytes = max_bytes
        self._max_age = max_age
        self._stop = threading.Event()  # set by shutdown: cuts a retry's wait short
        self._retry = Retry(
            attempts=retries,
            backoff=backoff,
            down_delay=down_delay,
            max_down_delay=max_down_delay,
            wait=self._stop.wait,
        )
        self._put_timeout = put_timeout
        self._putter = BoundedCaller("span_tree-parquet-put")
        self._written_namespaces: set[str] = set()
        self._compactor: AutoCompactor | None = None
        if compact_interval is not None:
            self._compactor = AutoCompactor(
                self.location,
                interval=compact_interval,
                first_delay=min(60.0, compact_interval),
                namespaces=lambda: set(self._written_namespaces),
                min_age=compact_min_age,
                # The traced application's process: no DuckDB loaded into it (tens of MB
                # kept) to save a few ms per small file.
                read_with_duckdb=False,
            )
        self._lock = threading.RLock()
        self._counters: dict[str, int] = dict.fromkeys(
            (
                "written_spans",
                "written_files",
                "store_errors",
                "spooled_spans",
                "replayed_spans",
                "lost_spans",
                "repaired_spans",  # written with unencodable text replaced (U+FFFD)
            ),
            0,
        )
        self._last_error: str | None = None
        # At exit: the monotonic time by which the store must have answered; after
        # it, what is left goes to the spool at once (set from another thread).
        self._exit_deadline: float | None = None
        self._in_hand = 0  # spans taken from the buffer, not yet written or spooled
        self._reset_buffer()
        # Spool files left by an earlier run are replayed on the first tick.
        self._replay_due = True
        reference = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: _after_fork(reference))

    # -- Sink protocol ---------------------------------------------------------------
    def export(self, batch: Sequence[FinishedSpan]) -> None:
        """Buffer a batch; write a file when a size or age limit is reached."""
        if batch:
            self.export_columns(columns_from_records(batch))

    def export_columns(self, columns: Sequence[Sequence[Any]]) -> None:
        """``export`` of a batch given as columns (``span_tree.typing.ColumnSink``): the
        processor's form, encoded without a record per span."""
        count = len(columns[0]) if columns else 0
        if len(columns) != len(SPAN_COLUMNS) or set(map(len, columns)) != {count}:
            lengths = sorted(set(map(len, columns)))
            raise ValueError(
                f"{len(SPAN_COLUMNS)} span columns of one length expected,"
                f" not {len(columns)} of lengths {lengths}"
            )
        if not count:
            return
        with self._lock:
            if not self._buffered:
                self._first_at = time.monotonic()
            # Kept as given (read-only, shared with other sinks), joined once when written.
            self._batches.append(columns)
            self._buffered += count
            self._buffered_bytes += _SPAN_BYTES * count + _EVENT_BYTES * sum(
                map(len, columns[_EVENTS])
            )
            if self._due():
                self._write_buffer(deadline=None)

    def force_flush(self, timeout: float) -> bool:
        """Write everything buffered now (to the store, else the spool).

        Returns:
            False when ``timeout`` ran out before the buffer was written or spooled.
        """
        deadline = time.monotonic() + timeout
        with self._lock:
            return self._write_buffer(deadline=deadline)

    def set_exit_deadline(self, deadline: float | None) -> None:
        """The process is exiting: the store gets until ``deadline`` (monotonic), then
        whatever it has not taken goes to the spool at once. ``None``: running again.

        Called from another thread; never waits (a put in progress gives up by then).
        """
        self._exit_deadline = deadline

    def pending_spans(self) -> int:
        """Spans held in memory (buffered or being written): lost if the process ends now."""
        return self._buffered + self._in_hand

    def lost_spans(self) -> int:
        """Spans neither written nor spooled so far."""
        return self._counters["lost_spans"]

    def shutdown(self) -> None:
        """Write what is buffered (to the store, else the spool); stop any compaction."""
        self._stop.set()
        if self._compactor is not None:
            self._compactor.stop()
        self.force_flush(10.0)

    def stats(self) -> dict[str, Any]:
        """Counters merged into ``span_tree.stats()``: written, spooled, replayed, lost.

        Never waits on the sink's lock (a write may hang on the store for a while).
        """
        result: dict[str, Any] = dict(self._counters)
        result["retries"] = self._retry.retries
        result["buffered_spans"] = self._buffered
        result["last_store_error"] = self._last_error
        result["store_down"] = self._retry.is_open()
        result["spool_pending_files"] = len(self.spool.pending())
        return result

    # -- writing ---------------------------------------------------------------------
    def _reset_buffer(self) -> None:
        # The batches, each as its columns: copying them into one list per column on
        # every export cost more than joining them once, where a column that holds one
        # value throughout (namespace, app, host...) is not copied at all.
        self._batches: list[Sequence[Sequence[Any]]] = []
        self._buffered = 0
        self._buffered_bytes = 0
        self._first_at = 0.0

    def _due(self) -> bool:
        return bool(self._buffered) and (
            self._buffered >= self._max_rows
            or self._buffered_bytes >= self._max_bytes
            or time.monotonic() - self._first_at >= self._max_age
        )

    def _limit(self, deadline: float | None) -> float | None:
        """``deadline``, or the exit deadline when that is sooner."""
        exit_deadline = self._exit_deadline
        if exit_deadline is None:
            return deadline
        return exit_deadline if deadline is None else min(deadline, exit_deadline)

    def _write_buffer(self, *, deadline: float | None) -> bool:
        batches, count = self._batches, self._buffered
        self._reset_buffer()
        if not count:
            return True
        self._in_hand = count
        try:
            return self._write_columns(joined_columns(batches), deadline)
        finally:
            self._in_hand = 0

    def _write_columns(self, columns: Sequence[Sequence[Any]], deadline: float | None) -> bool:
        deadline = self._limit(deadline)
        # The batch's identity, chosen once: every retry and spool replay of its files
        # puts the same names, so none of them can add rows twice.
        batch_id = new_batch_id()
        try:
            prepared = prepare_column_files(columns, batch_id=batch_id)
        except Exception as error:  # a span pyarrow cannot encode: keep the others
            self._last_error = f"encoding failed: {repr(error)[:300]}"
            kept, repaired, lost = _encodable_records(records_from_columns(columns))
            self._counters["repaired_spans"] += repaired
            self._counters["lost_spans"] += lost
            self._in_hand -= lost
            try:
                prepared = prepare_files(kept, batch_id=batch_id)
            except Exception as again:  # not a per-record problem after all
                self._counters["lost_spans"] += len(kept)
                self._last_error = f"encoding failed: {repr(again)[:300]}"
                return True
        complete = True
        for item in prepared:
            self._written_namespaces.add(item.relative_path.split("/", 1)[0][len("namespace=") :])
            deadline = self._limit(deadline)
            if deadline is not None and time.monotonic() >= deadline:
                complete = False
            if complete and self._put_with_retries(item, deadline):
                self._in_hand -= item.rows
                continue
            self._keep_in_spool(item)
            self._in_hand -= item.rows
        deadline = self._limit(deadline)
        if (
            self._replay_due
            and not self._retry.is_open()
            and (deadline is None or time.monotonic() < deadline)
        ):
            self._replay(deadline)
        return complete

    def _put_with_retries(self, item: PreparedFile, deadline: float | None) -> bool:
        def attempt(limit: float | None) -> Outcome:
            timeout = self._put_timeout
            if limit is not None:
                timeout = min(timeout, limit - time.monotonic())
            if timeout <= 0:
                return give_up()
            try:
                self._put_within(item, timeout)
            except TimeoutError as error:  # a hanging store: do not pile up more attempts
                self._failed(error)
                return give_up()
            except Exception as error:  # fsspec backends raise many kinds of errors
                self._failed(error)
                return RETRY
            self._counters["written_spans"] += item.rows
            self._counters["written_files"] += 1
            return DONE

        if self._retry.run(attempt, limit=lambda: self._limit(deadline)):
            return True
        self._replay_due = True
        return False

    def _failed(self, error: BaseException) -> None:
        self._counters["store_errors"] += 1
        self._last_error = repr(error)

    def _put_within(self, item: PreparedFile, timeout: float) -> None:
        """Put one file, giving up after ``timeout`` seconds (or at the exit deadline).

        A put that finishes after we gave up is harmless: the file also went to the
        spool under the same name, and replaying it writes the same object again.
        """
        give_up_at = time.monotonic() + timeout

        def too_late() -> bool:
            limit = self._limit(give_up_at)
            return limit is not None and time.monotonic() >= limit

        try:
            self._putter.call(lambda: put_prepared(self.location, item), give_up=too_late)
        except TimeoutError:
            raise TimeoutError(
                f"store write took longer than {timeout:.1f}s or the exit came"
            ) from None

    def _keep_in_spool(self, item: PreparedFile) -> None:
        try:
            self.spool.put(item.relative_path, item.data)
        except OSError:  # full, or the spool cannot be written either
            self._counters["lost_spans"] += item.rows
            return
        self._counters["spooled_spans"] += item.rows
        self._replay_due = True

    def _replay(self, deadline: float | None) -> None:
        def should_stop() -> bool:
            limit = self._limit(deadline)
            return limit is not None and time.monotonic() >= limit

        def put(relative: str, data: bytes) -> bool:
            rows = _row_count(data)
            self._put_within(PreparedFile(relative, data, rows), self._put_timeout)
            self._counters["replayed_spans"] += rows
            return True

        try:
            empty = self.spool.replay(put, should_stop=should_stop)
        except Exception as error:  # the store is still down: try again later
            self._failed(error)
            self._retry.open()
            return
        self._replay_due = not empty
        if empty:
            self._retry.close()

    # -- the processor's worker calls tick() on each wake-up ---------------------------
    def tick(self) -> None:
        """Write the buffer once its age limit is reached, replay the spool once the
        store is back, start a background compaction when one is due (cheap otherwise).
        """
        with self._lock:
            if self._due():
                self._write_buffer(deadline=None)
            elif self._replay_due and not self._retry.is_open():
                self._replay(deadline=None)
        if self._compactor is not None and self._written_namespaces and not self._retry.is_open():
            self._compactor.poke()

    def _after_fork_in_child(self) -> None:
        # The buffered spans belong to the parent, which writes them; the put thread
        # did not survive the fork.
        self._lock = threading.RLock()
        self._reset_buffer()
        self._putter.reset_after_fork()


_EVENTS = SPAN_COLUMNS.index("events")


def joined_columns(batches: Sequence[Sequence[Sequence[Any]]]) -> Sequence[Sequence[Any]]:
    """The columns of several batches as one batch's columns, rows in order.

    A column holding one value in every batch (the processor hands namespace, app,
    host... over as one object repeated) becomes ``[value] * rows`` instead of a copy:
    counting one repeated object compares identities only, where copying touches every
    row's reference count, and the encoder then sees the column as constant at once.
    """
    if len(batches) == 1:
        return batches[0]
    rows = sum(len(batch[0]) for batch in batches)
    joined: list[Sequence[Any]] = []
    for pieces in zip(*batches, strict=True):
        value = pieces[0][0]
        if all(holds_only(piece, value) for piece in pieces):
            joined.append([value] * rows)
        else:
            joined.append(list(chain.from_iterable(pieces)))
    return joined


def _row_count(data: bytes) -> int:
    """Rows of a Parquet file held in memory (0 when its footer cannot be read)."""
    try:
        return int(pq.read_metadata(pa.BufferReader(data)).num_rows)
    except (OSError, ValueError):
        return 0


def _encodable_records(records: list[FinishedSpan]) -> tuple[list[FinishedSpan], int, int]:
    """The records Arrow can encode, in order, repairing those it cannot (halving).

    A record that fails is retried with its text repaired (lone surrogates become
    U+FFFD); only one that still fails is left out.

    Returns:
        The records to write, how many of them were repaired, how many were left out.
    """
    try:
        records_to_table(records)
    except Exception:  # any conversion error: look closer
        if len(records) == 1:
            fixed = encodable(records[0])
            try:
                records_to_table([fixed])
            except Exception:
                return [], 0, 1
            return [fixed], 1, 0
        middle = len(records) // 2
        left, left_repaired, left_lost = _encodable_records(records[:middle])
        right, right_repaired, right_lost = _encodable_records(records[middle:])
        return left + right, left_repaired + right_repaired, left_lost + right_lost
    return records, 0, 0


def _after_fork(reference: weakref.ref[ParquetSink]) -> None:
    sink = reference()
    if sink is not None and not sink._stop.is_set():
        sink._after_fork_in_child()
