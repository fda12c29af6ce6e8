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
from dataclasses import dataclass
from typing import Any

from span_tree._context import current_span_var
from span_tree._record import FinishedSpan
from span_tree.typing import Sink

SinkFactory = Callable[[], Sink]


@dataclass
class SinkStats:
    """What one sink did: batches and spans exported, errors raised."""

    name: str
    exported_spans: int = 0
    batches: int = 0
    errors: int = 0
    last_error: str | None = None


class BatchProcessor:
    """Bounded queue + one worker thread; batches to every sink.

    Args:
        sink_factories: callables building the sinks; called on the worker thread so
            heavy imports (pyarrow, rich) never delay the traced application.
        max_queue_size: spans held at most; beyond it new spans are dropped and counted.
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
    ) -> None:
        self._factories = list(sink_factories)
        self._max_queue_size = max_queue_size
        self._batch_size = batch_size
        self._schedule_delay = schedule_delay
        self._sinks: list[tuple[Sink, SinkStats]] | None = None
        self.dropped = 0
        self.converted_errors = 0
        self._reset_worker_state()
        # Fork hooks cannot be unregistered: hold the processor weakly, so the ones that
        # configure() replaced (and their sinks' buffers) can be freed.
        os.register_at_fork(after_in_child=functools.partial(_reset_after_fork, weakref.ref(self)))

    def _reset_worker_state(self) -> None:
        # After fork the child has the queue's items of the parent (they are the
        # parent's to export) and no worker thread: start empty and lazily.
        self._queue: deque[Any] = deque()
        self._wake = threading.Event()
        self._flush_requests: list[threading.Event] = []
        self._requests_lock = threading.Lock()
        self._worker: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._stopping = False
        self._stopped = threading.Event()

    # -- caller side ------------------------------------------------------------------
    def on_end(self, item: Any) -> None:
        """Queue a finished live span (or a ready record). Never blocks, never raises."""
        queue = self._queue
        if len(queue) >= self._max_queue_size or self._stopping:
            self.dropped += 1
            return
        queue.append(item)
        # ">=", not "==": threads appending at once can step over the exact size, and the
        # worker would then sleep a whole schedule_delay on a growing queue.
        if len(queue) >= self._batch_size and not self._wake.is_set():
            self._wake.set()
        if self._worker is None:
            self._start_worker()

    def flush(self, timeout: float) -> bool:
        """Export everything queued and flush every sink; False if ``timeout`` ran out."""
        if self._worker is None:
            if not self._queue and self._sinks is None:
                return True
            self._start_worker()
        done = threading.Event()
        with self._requests_lock:
            if self._stopped.is_set():
                # Shut down already (say by the user, then again at exit): no worker is
                # left to answer, and waiting would only delay the caller by `timeout`.
                return not self._queue
            self._flush_requests.append(done)
        self._wake.set()
        return done.wait(timeout)

    def shutdown(self, timeout: float) -> bool:
        """Flush, then stop the worker and shut the sinks down, within ``timeout``."""
        deadline = time.monotonic() + timeout
        flushed = self.flush(timeout)
        self._stopping = True
        self._wake.set()
        if self._worker is not None and self._worker.is_alive():
            self._stopped.wait(max(0.0, deadline - time.monotonic()))
        return flushed

    def stats(self) -> dict[str, Any]:
        """Counters for ``span_tree.stats()``."""
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
            "queued": len(self._queue),
            "dropped": self.dropped,
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
        from span_tree._span import SUPPRESSED

        # Nothing this thread does (sinks logging, libraries they call) is traced.
        current_span_var.set(SUPPRESSED)
        self._sinks = self._build_sinks()
        while True:
            self._wake.wait(self._schedule_delay)
            self._wake.clear()
            self._export_queued()
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
                _report(f"span_tree: could not start a sink: {error!r}")
                continue
            sinks.append((sink, SinkStats(type(sink).__name__)))
        return sinks

    def _export_queued(self) -> None:
        from span_tree._span import Span, to_record

        queue = self._queue
        popleft = queue.popleft
        while queue:
            items = [popleft() for _ in range(min(len(queue), self._batch_size))]
            try:
                batch = [to_record(item) if item.__class__ is Span else item for item in items]
            except Exception:
                batch = self._convert_one_by_one(items)
            if batch:
                self._export(batch)

    def _convert_one_by_one(self, items: list[Any]) -> list[FinishedSpan]:
        """The slow path after a conversion failed: keep every span that converts."""
        from span_tree._span import Span, to_record

        batch = []
        for item in items:
            try:
                batch.append(to_record(item) if isinstance(item, Span) else item)
            except Exception as error:
                self.converted_errors += 1
                _report(f"span_tree: could not record span {item.name!r}: {error!r}")
        return batch

    def _export(self, batch: list[FinishedSpan]) -> None:
        assert self._sinks is not None
        for sink, sink_stats in self._sinks:
            try:
                sink.export(batch)
            except Exception as error:
                sink_stats.errors += 1
                sink_stats.last_error = repr(error)
                if sink_stats.errors == 1:
                    _report(f"span_tree: sink {sink_stats.name} failed: {error!r}")
            else:
                sink_stats.batches += 1
                sink_stats.exported_spans += len(batch)

    def _flush_sinks(self) -> None:
        assert self._sinks is not None
        for sink, sink_stats in self._sinks:
            try:
                sink.force_flush(10.0)
            except Exception as error:
                sink_stats.errors += 1
                sink_stats.last_error = repr(error)


def _reset_after_fork(processor_ref: weakref.ref[BatchProcessor]) -> None:
    processor = processor_ref()
    if processor is not None:
        processor._reset_worker_state()


def _quietly(action: Callable[[], Any]) -> None:
    try:
        action()
    except Exception as error:
        _report(f"span_tree: {error!r}")


def _report(message: str) -> None:
    """Tell the user about a tracing problem without going through logging."""
    # stderr may be closed at shutdown: then there is nobody left to tell.
    with contextlib.suppress(Exception):
        print(message, file=sys.stderr)
