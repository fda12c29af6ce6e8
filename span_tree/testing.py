"""Test-mode: assert on your own traces.

``with capture_spans() as spans:`` yields a live list that receives each span record as
it ends (synchronously, no flush needed). The pytest plugin offers the same as the
``capture_spans`` fixture.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from span_tree import _runtime
from span_tree._record import FinishedSpan


class CapturedSpans(list[FinishedSpan]):
    """The span records captured so far, in the order they ended."""

    def names(self) -> list[str]:
        """Names of the captured spans (finished versions only)."""
        return [span.name for span in self if span.status != "started"]

    def by_name(self, name: str) -> FinishedSpan:
        """The last finished span called ``name``.

        Raises:
            KeyError: no such span was captured.
        """
        for span in reversed(self):
            if span.name == name and span.status != "started":
                return span
        raise KeyError(f"no span named {name!r}; captured: {self.names()}")


@contextmanager
def capture_spans() -> Iterator[CapturedSpans]:
    """Capture every span that ends inside the block.

    INFO records logged inside spans become events here as they do in an application:
    while the block runs, a root logger above INFO (pytest's own log handlers make
    logging look configured, so it stays at WARNING) is lowered to INFO, then restored
    unless the block set its own level. The pytest fixture is this same block.
    """
    root = logging.getLogger()
    level = root.level
    lowered = level > logging.INFO
    if lowered:
        root.setLevel(logging.INFO)
    captured = CapturedSpans()
    _runtime.listeners.append(captured.append)
    try:
        yield captured
    finally:
        _runtime.listeners.remove(captured.append)
        if lowered and root.level == logging.INFO:
            root.setLevel(level)
