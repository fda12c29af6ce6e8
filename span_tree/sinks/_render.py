"""Draw a trace as a rich tree: spans with duration and status, log lines interleaved.

Shared by the console sink and ``spantree trace``. Imports rich.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from rich.text import Text
from rich.tree import Tree

from span_tree._display import causal_items, format_duration, short_error_type, status_mark
from span_tree._record import (
    STATUS_FAILED,
    STATUS_STARTED,
    Event,
    FinishedSpan,
    newest_versions,
)

LEVEL_STYLES = {
    "DEBUG": "dim",
    "INFO": "",
    "WARNING": "yellow",
    "ERROR": "bold red",
    "CRITICAL": "bold white on red",
}
_LEVEL_ORDER = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}
# The colour of each status mark (the TUI draws the same marks in the same colours).
STATUS_STYLES = {STATUS_FAILED: "bold red", STATUS_STARTED: "yellow"}


def span_label(span: FinishedSpan) -> Text:
    """One line for a span: status mark, name, duration, error."""
    label = Text()
    label.append(f"{status_mark(span.status)} ", style=STATUS_STYLES.get(span.status, "green"))
    label.append(span.name, style="bold")
    label.append(f"  {format_duration(span.duration_us)}", style="cyan")
    if span.attributes:
        shown = ", ".join(f"{k}={v!r}" for k, v in list(span.attributes.items())[:4])
        label.append(f"  {shown}", style="dim")
    if span.error_type:
        label.append(f"  {short_error_type(span.error_type)}: {span.error_message}", style="red")
    return label


def event_label(event: Event) -> Text:
    """One line for a log event, coloured by level."""
    text = Text()
    text.append(f"{event.level:<8} ", style=LEVEL_STYLES.get(event.level, ""))
    text.append(event.message, style=LEVEL_STYLES.get(event.level, ""))
    if event.logger:
        text.append(f"  [{event.logger}]", style="dim")
    return text


def _traceback_text(title: str, traceback: str, style: str) -> Text:
    text = Text(title, style=f"bold {style}")
    text.append("\n" + traceback.rstrip(), style=style)
    return text


def render_trace(
    records: Sequence[FinishedSpan], *, min_level: str = "DEBUG", tracebacks: bool = False
) -> Tree:
    """Build the tree of one trace. Spans whose parent is missing hang off the top.

    Args:
        records: span versions of one trace (older versions are ignored).
        min_level: hide events below this level.
        tracebacks: under each span, the tracebacks of its handled errors and of the
            error it failed with.
    """
    spans = sorted(newest_versions(records), key=lambda s: (s.start_time, s.seq))
    by_id = {span.span_id: span for span in spans}
    children: dict[str | None, list[FinishedSpan]] = defaultdict(list)
    for span in spans:
        parent = span.parent_id if span.parent_id in by_id else None
        children[parent].append(span)
    roots = children.get(None, [])
    trace_id = spans[0].trace_id if spans else "?"
    top = Tree(Text(f"trace {trace_id}", style="dim")) if len(roots) != 1 else None
    threshold = _LEVEL_ORDER.get(min_level.upper(), 0)

    def add(node: Tree | None, span: FinishedSpan) -> Tree:
        branch = Tree(span_label(span)) if node is None else node.add(span_label(span))
        events = [e for e in span.events if _LEVEL_ORDER.get(e.level, 0) >= threshold]
        for item in causal_items(span, children[span.span_id], events):
            if isinstance(item, Event):
                branch.add(event_label(item))
            else:
                assert isinstance(item, FinishedSpan)
                add(branch, item)
        if tracebacks:
            for handled in span.handled_errors:
                if handled.traceback:
                    title = f"handled {short_error_type(handled.type)}: {handled.message}"
                    branch.add(_traceback_text(title, handled.traceback, "yellow"))
            if span.error_traceback:
                title = f"failed {short_error_type(span.error_type)}: {span.error_message}"
                branch.add(_traceback_text(title, span.error_traceback, "red"))
        return branch

    if top is None:
        return add(None, roots[0])
    for root in roots:
        add(top, root)
    return top
