"""Draw each finished trace as a rich tree on stderr: what you read instead of a log file.

Spans are grouped by trace and printed when the trace's root arrives. Spans of a trace
that arrive after its root (children that outlived it) are printed as a short follow-up.
"""

from __future__ import annotations

import sys
from collections import OrderedDict
from collections.abc import Sequence
from typing import TextIO

from rich.console import Console

from span_tree._record import FinishedSpan
from span_tree.sinks._render import render_trace

MAX_PENDING_SPANS = 10_000
MAX_PRINTED_TRACES = 1_000


class ConsoleSink:
    """Prints traces as trees.

    Args:
        stream: where to print; default ``sys.stderr`` at export time.
        min_level: hide log events below this level.
    """

    def __init__(self, stream: TextIO | None = None, *, min_level: str = "DEBUG") -> None:
        self._stream = stream
        self._min_level = min_level
        self._pending: OrderedDict[str, list[FinishedSpan]] = OrderedDict()
        self._pending_count = 0
        self._printed: OrderedDict[str, None] = OrderedDict()

    def _console(self) -> Console:
        return Console(file=self._stream or sys.stderr, highlight=False, soft_wrap=False)

    def export(self, batch: Sequence[FinishedSpan]) -> None:
        ready: list[list[FinishedSpan]] = []
        for span in batch:
            if span.trace_id in self._printed:
                ready.append([span])  # a late child: print it on its own
                continue
            self._pending.setdefault(span.trace_id, []).append(span)
            self._pending_count += 1
            # seq 1 is the trace's root in the process that recorded it (its parent may
            # be remote: a trace continued from a W3C traceparent).
            if (span.parent_id is None or span.seq == 1) and span.status != "started":
                ready.append(self._pop(span.trace_id))
        while self._pending_count > MAX_PENDING_SPANS and self._pending:
            ready.append(self._pop(next(iter(self._pending))))
        if ready:
            console = self._console()
            for spans in ready:
                console.print(render_trace(spans, min_level=self._min_level))

    def _pop(self, trace_id: str) -> list[FinishedSpan]:
        spans = self._pending.pop(trace_id)
        self._pending_count -= len(spans)
        self._printed[trace_id] = None
        while len(self._printed) > MAX_PRINTED_TRACES:
            self._printed.popitem(last=False)
        return spans

    def force_flush(self, timeout: float) -> bool:
        return True

    def shutdown(self) -> None:
        # Traces whose root never came (it runs elsewhere, or the process is ending).
        console = self._console()
        for trace_id in list(self._pending):
            console.print(render_trace(self._pop(trace_id), min_level=self._min_level))
