"""Messages the screens post to the app: where to go next, and "my data is shown".

Screens never import each other: a screen that wants another one posts a message here,
and ``SpanTreeApp`` (the one module that knows every screen) handles it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from textual.message import Message

from span_tree._record import FinishedSpan

if TYPE_CHECKING:
    from textual.screen import Screen

    from span_tree.tui._source import FilterChoices


@dataclass
class Loaded(Message):
    """``screen`` shows the data of its latest load, laid out and painted.

    Posted once per load (stale loads post nothing), after the screen's next refresh,
    so whoever waits for it (tests, benchmarks) sees what a person sees.
    """

    screen: Screen[Any]


@dataclass
class OpenSpans(Message):
    """List the newest spans called ``name`` under ``filters``."""

    name: str
    filters: FilterChoices


@dataclass
class OpenTrace(Message):
    """Look up trace ``trace_id`` and show it, with the cursor on ``span_id`` if given."""

    trace_id: str
    span_id: str | None = None


@dataclass
class OpenSpan(Message):
    """Show one span (``trace``: the spans of its trace, for offsets)."""

    span: FinishedSpan
    trace: list[FinishedSpan]
