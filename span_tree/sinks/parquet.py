"""The Parquet sink: buffers span versions and writes them as files into a store.

The sink is called on the processor's worker thread only, so a slow or failing store
delays that thread, never the traced application. Writes are retried with backoff; a
store that stays down sends files to a bounded local spool, replayed when the store is
back; spans that fit nowhere are counted in ``stats()`` (``span_tree.stats()``).
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

from span_tree._record import FinishedSpan
from span_tree._sanitize import encodable
from span_tree._spool_dir import default_spool_dir
from span_tree.storage._auto import AutoCompactor
from span_tree.storage._layout import new_batch_id
from span_tree.storage._location import open_store
from span_tree.storage._spool import DEFAULT_SPOOL_BYTES, Spool
from span_tree.storage._writer import PreparedFile, prepare_files, put_prepared
from span_tree.storage.schema import records_to_table

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
            spool_dir or default_spool_dir(self.location.url), max_bytes=spool_max_bytes
        )
        self._max_rows = max_rows
        self._max_bytes = max_bytes
        self._max_age = max_age
        self._retries = max(1, retries)
        self._backoff = backoff
        self._down_delay = down_delay
        self._max_down_delay = max_down_delay
        self._put_timeout = put_timeout
        self._written_namespaces: set[str] = set()
        self._compactor: AutoCompactor | None = None
        if compact_interval is not None:
            self._compactor = AutoCompactor(
                self.location,
                interval=compact_interval,
                first_delay=min(60.0, compact_interval),
                namespaces=lambda: set(self._written_namespaces),
                min_age=compact_min_age,
            )
        self._lock = threading.RLock()
        self._counters: dict[str, int] = dict.fromkeys(
            (
                "written_spans",
                "written_files",
                "store_errors",
                "retries",
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
        self._down_until = 0.0
        self._current_down_delay = down_delay
        self._stop = threading.Event()
        self._timer: threading.Thread | None = None
        # Spool files left by an earlier run are replayed by the timer soon after start.
        self._replay_due = True
        reference = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: _after_fork(reference))
        self._start_timer()

    # -- Sink protocol ---------------------------------------------------------------
    def export(self, batch: Sequence[FinishedSpan]) -> None:
        """Buffer a batch; write a file when a size or age limit is reached."""
        with self._lock:
            if not self._buffer:
                self._first_at = time.monotonic()
            self._buffer.extend(batch)
            self._buffered_bytes += sum(
                _SPAN_BYTES + _EVENT_BYTES * len(span.events) for span in batch
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
        return len(self._buffer) + self._in_hand

    def lost_spans(self) -> int:
        """Spans neither written nor spooled so far."""
        return self._counters["lost_spans"]

    def shutdown(self) -> None:
        """Write what is buffered and stop the age timer (and any compaction)."""
        self._stop.set()
        if self._compactor is not None:
            self._compactor.stop()
        self.force_flush(10.0)
        timer = self._timer
        if timer is not None and timer is not threading.current_thread():
            timer.join(timeout=5.0)

    def stats(self) -> dict[str, Any]:
        """Counters merged into ``span_tree.stats()``: written, spooled, replayed, lost.

        Never waits on the sink's lock (a write may hang on the store for a while).
        """
        result: dict[str, Any] = dict(self._counters)
        result["buffered_spans"] = len(self._buffer)
        result["last_store_error"] = self._last_error
        result["store_down"] = self._down_until > time.monotonic()
        result["spool_pending_files"] = len(self.spool.pending())
        return result

    # -- writing ---------------------------------------------------------------------
    def _reset_buffer(self) -> None:
        self._buffer: list[FinishedSpan] = []
        self._buffered_bytes = 0
        self._first_at = 0.0

    def _due(self) -> bool:
        return bool(self._buffer) and (
            len(self._buffer) >= self._max_rows
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
        records = self._buffer
        self._reset_buffer()
        if not records:
            return True
        self._in_hand = len(records)
        try:
            return self._write_records(records, deadline)
        finally:
            self._in_hand = 0

    def _write_records(self, records: list[FinishedSpan], deadline: float | None) -> bool:
        deadline = self._limit(deadline)
        # The batch's identity, chosen once: every retry and spool replay of its files
        # puts the same names, so none of them can add rows twice.
        batch_id = new_batch_id()
        try:
            prepared = prepare_files(records, batch_id=batch_id)
        except Exception as error:  # a record pyarrow cannot encode: keep the others
            self._last_error = f"encoding failed: {repr(error)[:300]}"
            kept, repaired, lost = _encodable_records(records)
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
            and not self._store_down()
            and (deadline is None or time.monotonic() < deadline)
        ):
            self._replay(deadline)
        return complete

    def _put_with_retries(self, item: PreparedFile, deadline: float | None) -> bool:
        if self._store_down():
            return False
        delay = self._backoff
        for attempt in range(self._retries):
            deadline = self._limit(deadline)
            if attempt:
                if deadline is not None and time.monotonic() + delay >= deadline:
                    break
                self._counters["retries"] += 1
                self._stop.wait(delay)
                delay *= 2
            timeout = self._put_timeout
            if deadline is not None:
                timeout = min(timeout, deadline - time.monotonic())
            if timeout <= 0:
                break
            try:
                self._put_within(item, timeout)
            except TimeoutError as error:  # a hanging store: do not pile up more attempts
                self._counters["store_errors"] += 1
                self._last_error = repr(error)
                break
            except Exception as error:  # fsspec backends raise many kinds of errors
                self._counters["store_errors"] += 1
                self._last_error = repr(error)
                continue
            self._counters["written_spans"] += item.rows
            self._counters["written_files"] += 1
            self._store_up()
            return True
        self._mark_down()
        return False

    def _put_within(self, item: PreparedFile, timeout: float) -> None:
        """Put one file, giving up after ``timeout`` seconds.

        The put runs on its own daemon thread, so a store that hangs (an unreachable
        endpoint, a stuck mount) cannot hold up flushing or the exit. A put that
        finishes after we gave up is harmless: the file also went to the spool under
        the same name, and replaying it writes the same object again.
        """
        outcome: list[BaseException] = []
        done = threading.Event()

        def attempt() -> None:
            try:
                put_prepared(self.location, item)
            except BaseException as error:  # handed to the waiting thread
                outcome.append(error)
            finally:
                done.set()

        threading.Thread(target=attempt, name="span_tree-parquet-put", daemon=True).start()
        give_up = time.monotonic() + timeout
        # Waited in short steps: an exit deadline set meanwhile cuts the wait short.
        while not done.wait(min(0.05, max(0.0, give_up - time.monotonic()))):
            limit = self._limit(give_up)
            if limit is not None and time.monotonic() >= limit:
                raise TimeoutError(f"store write took longer than {timeout:.1f}s or the exit came")
        if outcome:
            raise outcome[0]

    def _keep_in_spool(self, item: PreparedFile) -> None:
        if self.spool.put(item):
            self._counters["spooled_spans"] += item.rows
            self._replay_due = True
        else:
            self._counters["lost_spans"] += item.rows

    def _replay(self, deadline: float | None) -> None:
        def should_stop() -> bool:
            limit = self._limit(deadline)
            return limit is not None and time.monotonic() >= limit

        try:
            self._counters["replayed_spans"] += self.spool.replay(
                self.location,
                should_stop=should_stop,
                put=lambda prepared: self._put_within(prepared, self._put_timeout),
            )
        except Exception as error:  # the store is still down: try again later
            self._counters["store_errors"] += 1
            self._last_error = repr(error)
            self._mark_down()
            return
        self._replay_due = bool(self.spool.pending())
        if not self._replay_due:
            self._store_up()

    def _store_down(self) -> bool:
        return time.monotonic() < self._down_until

    def _mark_down(self) -> None:
        self._down_until = time.monotonic() + self._current_down_delay
        self._current_down_delay = min(self._current_down_delay * 2, self._max_down_delay)
        self._replay_due = True

    def _store_up(self) -> None:
        self._down_until = 0.0
        self._current_down_delay = self._down_delay

    # -- the age timer ---------------------------------------------------------------
    def _start_timer(self) -> None:
        self._stop = threading.Event()
        self._timer = threading.Thread(
            target=self._tick_forever, name="span_tree-parquet-timer", daemon=True
        )
        self._timer.start()

    def _tick_forever(self) -> None:
        interval = max(0.05, min(self._max_age / 2, 1.0))
        while not self._stop.wait(interval):
            try:
                self._tick()
            except Exception as error:  # never let the timer thread die noisily
                self._last_error = repr(error)

    def _tick(self) -> None:
        with self._lock:
            if self._due():
                self._write_buffer(deadline=None)
            elif self._replay_due and not self._store_down():
                self._replay(deadline=None)
        self.tick()

    def tick(self) -> None:
        """Start a background compaction when one is due (cheap; the age timer calls it)."""
        if self._compactor is not None and self._written_namespaces and not self._store_down():
            self._compactor.poke()

    def _after_fork_in_child(self) -> None:
        # The buffered spans belong to the parent, which writes them; the timer thread
        # did not survive the fork.
        self._lock = threading.RLock()
        self._reset_buffer()
        self._start_timer()


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
