"""The batching processor: a bounded queue and one worker thread feeding every sink.

The caller's thread only appends to a deque. The worker freezes live spans into
records, batches them and calls each sink; a sink that raises is counted and isolated,
one that hangs only delays the worker (callers never wait on it except in ``flush``,
which is bounded by its timeout).
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from itertools import chain
from typing import Any

from span_tree._record import FinishedSpan, columns_from_records, records_from_columns
from span_tree.typing import Sink

SinkFactory = Callable[[], Sink]
# Turns a batch of queued items (live spans, ready records) into records for the sinks.
BatchConverter = Callable[[list[Any]], list[FinishedSpan]]
# The same, into columns (one list per SPAN_COLUMNS entry) for sinks that take columns.
ColumnConverter = Callable[[list[Any]], list[list[Any]]]


def _records_as_they_are(items: list[Any]) -> list[FinishedSpan]:
    return items


# While running, a line about dropped or lost spans is printed at most this often.
LOSS_REPORT_INTERVAL = 60.0
# At exit, the part of the remaining time kept for spooling what the store did not take.
_SPOOL_RESERVE = 0.2
_MAX_SPOOL_RESERVE = 1.0
# Error texts kept and printed are cut to this many characters (an exception's repr
# may hold a whole batch).
MAX_ERROR_CHARS = 300


class SinkStats:
    """What one sink did: batches and spans exported, errors raised (``vars()`` lists them)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.exported_spans = 0
        self.batches = 0
        self.errors = 0
        self.failed_spans = 0  # spans of batches whose export raised (lost for this sink)
        self.last_error: str | None = None


class BatchProcessor:
    """Bounded queue + one worker thread; batches to every sink.

    Args:
        sink_factories: callables building the sinks; called on the worker thread so
            heavy imports (pyarrow, rich) never delay the traced application.
        max_queue_size: spans held at most. When the queue is full, a producer waits
            for the worker to make room (``on_full="block"``), or drops and counts the
            span at once (``"drop"``).
        max_block: with ``"block"``, a sink call running longer than this many seconds
            counts as hung: producers then drop (and count) instead of waiting, until the
            worker takes a batch again. A slow sink slows producers down; a stuck one
            costs them at most this once.
        convert: turns a batch of queued items into records (the default takes records
            as they are).
        convert_columns: turns a batch of queued items into columns (configure passes
            the span layer's converter of live spans). When given, each batch is
            converted once into columns: sinks with ``export_columns`` (the Parquet sink)
            take them as they are, the others get records made from them.
        on_worker_start: called first on the worker thread (configure passes what keeps
            the worker's own logging and library calls from being traced).
        batch_size: spans per export call; a full batch wakes the worker early.
        schedule_delay: seconds the worker waits before exporting a partial batch.
    """

    def __init__(
        self,
        sink_factories: Sequence[SinkFactory],
        *,
        max_queue_size: int = 100_000,
        batch_size: int = 512,
        schedule_delay: float = 0.5,
        on_full: str = "block",
        max_block: float = 2.0,
        convert: BatchConverter = _records_as_they_are,
        convert_columns: ColumnConverter | None = None,
        on_worker_start: Callable[[], None] | None = None,
    ) -> None:
        if on_full not in ("block", "drop"):
            raise ValueError(f"on_full must be 'block' or 'drop', not {on_full!r}")
        self._factories = list(sink_factories)
        self._convert = convert
        self._convert_columns = convert_columns
        self._on_worker_start = on_worker_start
        self._max_queue_size = max_queue_size
        self._max_block = max_block if on_full == "block" else 0.0
        # Set after a producer's wait for room timed out (a hung sink): drop without
        # waiting until the worker exports a batch again.
        self._stalled = False
        self.blocked = 0  # times a producer waited for room in the queue
        # When the sink call running now started (monotonic), None between calls.
        self._sink_call_started: float | None = None
        self._batch_size = batch_size
        self._schedule_delay = schedule_delay
        self._sinks: list[tuple[Sink, SinkStats]] | None = None
        self.dropped = 0
        self.converted_errors = 0
        # Spans handed to the sinks in the export call running now (for exit accounting).
        self._in_flight = 0
        # Exit: the monotonic time by which sinks must have kept (written or spooled)
        # what they hold; None while running normally.
        self._sink_deadline: float | None = None
        self._reported_losses = 0
        self._last_loss_report = time.monotonic() - LOSS_REPORT_INTERVAL
        self._reset_worker_state()
        # Fork hooks cannot be unregistered: hold the processor weakly, so the ones that
        # configure() replaced (and their sinks' buffers) can be freed.
        os.register_at_fork(after_in_child=functools.partial(_reset_after_fork, weakref.ref(self)))

    def _reset_worker_state(self) -> None:
        # After fork the child has the queue's items of the parent (they are the
        # parent's to export) and no worker thread: start empty and lazily.
        # Public to the span layer, which appends below fast_limit without calling on_end.
        self.queue: deque[Any] = deque()
        self._wake = threading.Event()
        self._room = threading.Event()  # set by the worker each time it took a batch
        self._flush_requests: list[threading.Event] = []
        self._requests_lock = threading.Lock()
        self._worker: threading.Thread | None = None
        # on_end appends without further checks while the queue is shorter than this:
        # -1 until the worker runs and again once stopping (set by on_end's slow path).
        self.fast_limit = -1
        self._start_lock = threading.Lock()
        self._stopping = False
        self._stopped = threading.Event()

    # -- caller side ------------------------------------------------------------------
    def on_end(self, item: Any) -> None:
        """Queue a finished live span (or a ready record). Never blocks, never raises."""
        queue = self.queue
        if len(queue) < self.fast_limit:
            # Worker running, not stopping, and the queue below a batch after this append:
            # nothing else to check or wake.
            queue.append(item)
            return
        if (len(queue) >= self._max_queue_size and not self._wait_for_room()) or self._stopping:
            self.dropped += 1
            return
        queue.append(item)
        # ">=", not "==": threads appending at once can step over the exact size, and the
        # worker would then sleep a whole schedule_delay on a growing queue.
        if len(queue) >= self._batch_size and not self._wake.is_set():
            self._wake.set()
        if self._worker is None:
            self._start_worker()
        elif not self._stopping:
            self.fast_limit = min(self._batch_size, self._max_queue_size) - 1
            if self._stopping:  # shutdown began meanwhile: it set -1 before or after us
                self.fast_limit = -1

    def _wait_for_room(self) -> bool:
        """The queue is full: wait until the worker takes a batch. False: drop instead.

        A producer faster than the worker (a batch job in a tight loop; the worker shares
        the GIL with it) would otherwise lose spans; waiting on an Event releases the GIL
        so the worker catches up. Never waits on a worker stuck in a sink call.
        """
        worker = self._worker
        if not self._max_block or self._stalled or worker is None:
            return False
        if threading.current_thread() is worker:
            return False  # the worker cannot wait for itself
        self.blocked += 1
        give_up = time.monotonic() + 10 * self._max_block  # a worker that died, say
        while True:
            self._room.clear()
            self._wake.set()
            if self._room.wait(0.05):
                return True
            started = self._sink_call_started
            now = time.monotonic()
            hung = started is not None and now - started > self._max_block
            if hung or now > give_up or not worker.is_alive():
                self._stalled = True
                return False

    def flush(self, timeout: float) -> bool:
        """Export everything queued and flush every sink; False if ``timeout`` ran out."""
        if self._worker is None:
            if not self.queue and self._sinks is None:
                return True
            self._start_worker()
        done = threading.Event()
        with self._requests_lock:
            if self._stopped.is_set():
                # Shut down already (say by the user, then again at exit): no worker is
                # left to answer, and waiting would only delay the caller by `timeout`.
                return not self.queue
            self._flush_requests.append(done)
        self._wake.set()
        return done.wait(timeout)

    def shutdown(self, timeout: float) -> bool:
        """Flush, then stop the worker and shut the sinks down, within ``timeout``."""
        deadline = time.monotonic() + timeout
        flushed = self.flush(timeout)
        self._stopping = True
        self.fast_limit = -1
        self._wake.set()
        if self._worker is not None and self._worker.is_alive():
            self._stopped.wait(max(0.0, deadline - time.monotonic()))
        return flushed

    def exit_flush(self, timeout: float, *, stop: bool) -> int:
        """Flush (and with ``stop``, shut down) for a process exit within ``timeout``.

        Sinks are told the deadline: what the store has not taken by then goes to the
        spool at once (part of the time is kept for that). Never waits longer.

        Returns:
            The spans that were neither written nor spooled when the time ran out.
        """
        now = time.monotonic()
        timeout = max(0.0, timeout)
        reserve = min(_MAX_SPOOL_RESERVE, _SPOOL_RESERVE * timeout)
        self._set_sink_deadline(now + timeout - reserve)
        done = self.shutdown(timeout) if stop else self.flush(timeout)
        if done and (not stop or self._stopped.is_set() or self._worker is None):
            return 0
        return self.unkept_spans()

    def end_exit(self) -> None:
        """Back to normal running after an ``exit_flush`` that did not stop (SIGTERM)."""
        self._set_sink_deadline(None)

    def unkept_spans(self) -> int:
        """Spans queued, being exported, or buffered by a sink: lost if the process ends now."""
        # Every sink holds its own copy of a batch: count the sink holding the most.
        held = self._in_flight
        for sink, _ in self._sinks or []:
            pending = getattr(sink, "pending_spans", None)
            if callable(pending):
                with contextlib.suppress(Exception):
                    held = max(held, int(pending()))
        return len(self.queue) + held

    def lost_spans(self) -> dict[str, int]:
        """Spans dropped or lost so far, by cause (cheap: counters only, no I/O)."""
        losses = {
            "dropped (queue full or after shutdown)": self.dropped,
            "unconvertible": self.converted_errors,
        }
        for sink, sink_stats in self._sinks or []:
            lost = sink_stats.failed_spans
            own = getattr(sink, "lost_spans", None)
            if callable(own):
                with contextlib.suppress(Exception):
                    lost += int(own())
            if lost:
                key = f"lost by {sink_stats.name}"
                losses[key] = losses.get(key, 0) + lost
        return {cause: count for cause, count in losses.items() if count}

    def report_losses(self, *, force: bool) -> None:
        """Print one line when spans were dropped or lost since the last line.

        Without ``force`` at most once per ``LOSS_REPORT_INTERVAL`` (the worker calls it).
        """
        now = time.monotonic()
        if not force and now - self._last_loss_report < LOSS_REPORT_INTERVAL:
            return
        losses = self.lost_spans()
        total = sum(losses.values())
        if total <= self._reported_losses:
            return
        self._reported_losses = total
        self._last_loss_report = now
        causes = ", ".join(f"{count} {cause}" for cause, count in losses.items())
        _report(f"span_tree: {total} spans not stored so far ({causes}); see span_tree.stats()")

    def _set_sink_deadline(self, deadline: float | None) -> None:
        self._sink_deadline = deadline
        for sink, _ in self._sinks or []:
            _tell_deadline(sink, deadline)

    def stats(self) -> dict[str, Any]:
        """Counters for ``span_tree.stats()`` (never waits on a sink's lock or I/O)."""
        sinks = []
        for sink, sink_stats in self._sinks or []:
            entry: dict[str, Any] = dict(vars(sink_stats))
            own = getattr(sink, "stats", None)
            if callable(own):
                try:
                    entry.update(own())
                except Exception as error:
                    entry["stats_error"] = repr(error)
            sinks.append(entry)
        return {
            "queued": len(self.queue),
            "dropped": self.dropped,
            "blocked": self.blocked,
            "conversion_errors": self.converted_errors,
            "sinks": sinks,
        }

    # -- worker side ------------------------------------------------------------------
    def _start_worker(self) -> None:
        with self._start_lock:
            if self._worker is not None:
                return
            worker = threading.Thread(target=self._run, name="span_tree-processor", daemon=True)
            self._worker = worker
            worker.start()

    def _run(self) -> None:
        if self._on_worker_start is not None:
            _quietly(self._on_worker_start)
        self._sinks = self._build_sinks()
        if self._sink_deadline is not None:  # the exit began while the sinks started
            for sink, _ in self._sinks:
                _tell_deadline(sink, self._sink_deadline)
        while True:
            self._wake.wait(self._schedule_delay)
            self._wake.clear()
            self._export_queued()
            self._tick_sinks()
            if self._sink_deadline is None:
                self.report_losses(force=False)
            with self._requests_lock:
                requests, self._flush_requests = self._flush_requests, []
            if requests:
                self._flush_sinks()
                for request in requests:
                    request.set()
            if self._stopping:
                self._export_queued()
                for sink, _ in self._sinks:
                    _quietly(sink.shutdown)
                with self._requests_lock:
                    requests, self._flush_requests = self._flush_requests, []
                    self._stopped.set()
                for request in requests:
                    request.set()
                return

    def _build_sinks(self) -> list[tuple[Sink, SinkStats]]:
        sinks = []
        for factory in self._factories:
            try:
                sink = factory()
            except Exception as error:
                _report(f"span_tree: could not start a sink: {_bounded(error)}")
                continue
            sinks.append((sink, SinkStats(type(sink).__name__)))
        return sinks

    def _export_queued(self) -> None:
        queue = self.queue
        popleft = queue.popleft
        while queue:
            items = [popleft() for _ in range(min(len(queue), self._batch_size))]
            # Room again: let producers waiting on a full queue go on.
            self._stalled = False
            self._room.set()
            if self._convert_columns is not None:
                columns = self._converted(self._convert_columns, items)
                if columns is not None and columns[0]:
                    self._export(_Batch(columns=columns))
                continue
            records = self._converted(self._convert, items)
            if records:
                self._export(_Batch(records=records))

    def _converted(self, convert: Callable[[list[Any]], Any], items: list[Any]) -> Any:
        """``convert(items)``; after a failure, one by one, keeping every span that converts."""
        try:
            return convert(items)
        except Exception:
            pass
        parts = []
        for item in items:
            try:
                parts.append(convert([item]))
            except Exception as error:
                self.converted_errors += 1
                name = _bounded(getattr(item, "name", item))
                _report(f"span_tree: could not record span {name}: {_bounded(error)}")
        if convert is not self._convert_columns:
            return list(chain.from_iterable(parts))
        if not parts:
            return None
        return [list(chain.from_iterable(column)) for column in zip(*parts, strict=True)]

    def _export(self, batch: _Batch) -> None:
        assert self._sinks is not None
        self._in_flight = size = len(batch)
        for sink, sink_stats in self._sinks:
            self._sink_call_started = time.monotonic()
            try:
                # Asked of the class: a Mock sink answers every attribute, yet its test
                # expects export() calls.
                if hasattr(type(sink), "export_columns"):
                    sink.export_columns(batch.columns())  # type: ignore[attr-defined]
                else:
                    sink.export(batch.records())
            except Exception as error:
                sink_stats.errors += 1
                sink_stats.failed_spans += size
                sink_stats.last_error = _bounded(error)
                if sink_stats.errors == 1:
                    _report(f"span_tree: sink {sink_stats.name} failed: {sink_stats.last_error}")
            else:
                sink_stats.batches += 1
                sink_stats.exported_spans += size
        self._sink_call_started = None
        self._in_flight = 0

    def _tick_sinks(self) -> None:
        """Call each sink's optional ``tick()``: sinks own no threads, so this is when a
        sink writes what waited long enough or retries what its destination refused."""
        assert self._sinks is not None
        for sink, sink_stats in self._sinks:
            tick = getattr(sink, "tick", None)
            if not callable(tick):
                continue
            self._sink_call_started = time.monotonic()
            try:
                tick()
            except Exception as error:
                sink_stats.errors += 1
                sink_stats.last_error = _bounded(error)
        self._sink_call_started = None

    def _flush_sinks(self) -> None:
        assert self._sinks is not None
        deadline = self._sink_deadline
        timeout = 10.0 if deadline is None else max(0.0, deadline - time.monotonic())
        for sink, sink_stats in self._sinks:
            self._sink_call_started = time.monotonic()
            try:
                sink.force_flush(timeout)
            except Exception as error:
                sink_stats.errors += 1
                sink_stats.last_error = _bounded(error)
        self._sink_call_started = None


class _Batch:
    """One batch for the sinks, as columns or records: each form made once, when asked."""

    __slots__ = ("_columns", "_records")

    def __init__(
        self,
        *,
        columns: list[list[Any]] | None = None,
        records: list[FinishedSpan] | None = None,
    ) -> None:
        self._columns = columns
        self._records = records

    def __len__(self) -> int:
        return len(self._records) if self._records is not None else len(self.columns()[0])

    def columns(self) -> list[list[Any]]:
        if self._columns is None:
            self._columns = columns_from_records(self.records())
        return self._columns

    def records(self) -> list[FinishedSpan]:
        if self._records is None:
            self._records = records_from_columns(self.columns())
        return self._records


def _reset_after_fork(processor_ref: weakref.ref[BatchProcessor]) -> None:
    processor = processor_ref()
    if processor is not None:
        processor._reset_worker_state()


def _tell_deadline(sink: Sink, deadline: float | None) -> None:
    """Pass the exit deadline to a sink that takes one (``set_exit_deadline``)."""
    setter = getattr(sink, "set_exit_deadline", None)
    if callable(setter):
        with contextlib.suppress(Exception):
            setter(deadline)


def _bounded(value: Any, limit: int = MAX_ERROR_CHARS) -> str:
    """``repr(value)`` cut to ``limit`` characters (an error may quote a whole batch)."""
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[:limit] + f"…[{len(text) - limit} more chars]"


def _quietly(action: Callable[[], Any]) -> None:
    try:
        action()
    except Exception as error:
        _report(f"span_tree: {_bounded(error)}")


def _report(message: str) -> None:
    """Tell the user about a tracing problem without going through logging."""
    # stderr may be closed at shutdown: then there is nobody left to tell.
    with contextlib.suppress(Exception):
        print(message, file=sys.stderr)
