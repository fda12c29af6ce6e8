"""Extension points: the protocols user code can implement."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from span_tree._record import FinishedSpan


@runtime_checkable
class Sink(Protocol):
    """Where finished spans go. Called only from the processor's worker thread.

    A sink turns a batch into bytes somewhere; it may raise or be slow: the processor
    isolates the traced application from both. A sink starts no thread of its own: it
    may define ``tick()``, which the processor's worker calls on each wake-up (about
    twice a second) to write what waited long enough or retry what failed.
    """

    def export(self, batch: Sequence[FinishedSpan]) -> None:
        """Write one batch of span versions. Read-only: other sinks get the same records,
        and the records of spans without attributes or tags share one empty mapping."""

    def force_flush(self, timeout: float) -> bool:
        """Push out anything the sink buffers; return False if ``timeout`` ran out."""

    def shutdown(self) -> None:
        """Release resources; no export follows."""


@runtime_checkable
class ColumnSink(Sink, Protocol):
    """A sink that also takes a batch as columns, without a record per span.

    The processor converts each batch once: a sink whose class defines ``export_columns``
    gets the columns (and ``export`` is not called for that batch); the other sinks get
    records.
    """

    def export_columns(self, columns: Sequence[Sequence[Any]]) -> None:
        """Write one batch given as columns: one sequence per ``SPAN_COLUMNS`` entry
        (``span_tree._record.SPAN_COLUMNS``), in that order, all of one length, holding
        what the ``FinishedSpan`` fields hold. Read-only: other sinks share them."""
