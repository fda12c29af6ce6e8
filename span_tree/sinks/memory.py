"""A sink that keeps spans in a list: for tests and notebooks."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from span_tree._record import FinishedSpan


class MemorySink:
    """Keeps every exported span in ``spans`` (thread-safe)."""

    def __init__(self) -> None:
        self.spans: list[FinishedSpan] = []
        self._lock = threading.Lock()
        self.shut_down = False

    def export(self, batch: Sequence[FinishedSpan]) -> None:
        with self._lock:
            self.spans.extend(batch)

    def force_flush(self, timeout: float) -> bool:
        return True

    def shutdown(self) -> None:
        self.shut_down = True

    def clear(self) -> None:
        """Forget the spans kept so far."""
        with self._lock:
            self.spans.clear()
