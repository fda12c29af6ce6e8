"""Automatic compaction for long-running writers (a service's Parquet sink, the receiver).

Now and then (``interval``), one pass on a daemon thread at the lowest CPU priority:
closed partitions (before today, UTC) of the last ``days`` days with two or more small
files, and today's partition once it has ``open_min_files`` small files. Safe with any
number of other compactors (see ``_compact``); a pass is cut short by ``stop()``.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

from span_tree.storage._compact import DEFAULT_GRACE, DEFAULT_MIN_AGE, CompactResult, compact
from span_tree.storage._layout import list_partitions
from span_tree.storage._location import StoreLocation


class AutoCompactor:
    """Runs a compaction pass of a store in the background when one is due.

    Args:
        location: the store.
        interval: seconds between passes (the first one ``first_delay`` after start).
        first_delay: seconds before the first pass (a short-lived script never pays).
        namespaces: the namespaces to compact (called per pass); ``None``: all.
        days: how far back passes look.
        open_min_files: small files today's partition needs before it is merged.
        target_rows: rows per merged file at most (bounds the memory of a pass).
        min_age: files younger than this (by name) are left alone.
        grace: see ``compact``.
        read_with_duckdb: see ``compact`` (a traced service's sink passes False).
    """

    def __init__(
        self,
        location: StoreLocation,
        *,
        interval: float = 600.0,
        first_delay: float = 60.0,
        namespaces: Callable[[], Iterable[str]] | None = None,
        days: int = 7,
        open_min_files: int = 32,
        target_rows: int = 250_000,
        min_age: float = DEFAULT_MIN_AGE,
        grace: float = DEFAULT_GRACE,
        read_with_duckdb: bool = True,
    ) -> None:
        self.location = location
        self.interval = interval
        self._namespaces = namespaces
        self._days = days
        self._open_min_files = open_min_files
        self._target_rows = target_rows
        self._min_age = min_age
        self._grace = grace
        self._read_with_duckdb = read_with_duckdb
        self._next = time.monotonic() + first_delay
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.passes = 0
        self.last_result: CompactResult | None = None
        self.last_error: str | None = None

    def poke(self) -> None:
        """Start a pass on a daemon thread if one is due and none is running (cheap)."""
        if self._stop.is_set() or time.monotonic() < self._next:
            return
        if self._thread is not None and self._thread.is_alive():
            return
        self._next = time.monotonic() + self.interval
        self._thread = threading.Thread(
            target=self._background_pass, name="span_tree-compact", daemon=True
        )
        self._thread.start()

    def run_forever(self) -> None:
        """Start a daemon thread that pokes until ``stop()`` (for a process like the receiver)."""

        def loop() -> None:
            while not self._stop.wait(min(self.interval, 5.0)):
                self.poke()

        threading.Thread(target=loop, name="span_tree-compact-timer", daemon=True).start()

    def stop(self) -> None:
        """No new pass; a running one stops between merges."""
        self._stop.set()

    def run_pass(self) -> CompactResult:
        """One pass now, on the calling thread."""
        today = datetime.now(UTC).date()
        first = (today - timedelta(days=self._days)).isoformat()
        wanted = set(self._namespaces()) if self._namespaces is not None else None
        partitions = [
            partition
            for partition in list_partitions(self.location)
            if partition.date >= first and (wanted is None or partition.namespace in wanted)
        ]
        options = {
            "min_age": self._min_age,
            "target_rows": self._target_rows,
            "grace": self._grace,
            "workers": 1,
            "should_stop": self._stop.is_set,
            "read_with_duckdb": self._read_with_duckdb,
        }
        closed = [p for p in partitions if p.date < today.isoformat()]
        current = [p for p in partitions if p.date >= today.isoformat()]
        result = compact(self.location, partitions=closed, **options)  # type: ignore[arg-type]
        result.add(
            compact(
                self.location,
                partitions=current,
                min_files=self._open_min_files,
                **options,  # type: ignore[arg-type]
            )
        )
        return result

    def _background_pass(self) -> None:
        # The lowest priority for this thread only (Linux: a thread has its own nice).
        with contextlib.suppress(AttributeError, OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
        try:
            self.last_result = self.run_pass()
            self.last_error = None
        except Exception as error:  # a store that is down: try again next interval
            self.last_error = repr(error)[:300]
        self.passes += 1
