"""Draw a trace as a rich tree: spans with duration and status, log lines interleaved.

Shared by the console sink and ``spantree trace``. Imports rich.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from rich.text import Text
from rich.tree import Tree

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


def format_duration(micros: int | None) -> str:
    """Human duration: 850µs, 12.3ms, 4.56s, 3m 05s."""
    if micros is None:
        return "running"
    if micros < 1_000:
        return f"{micros}µs"
    if micros < 1_000_000:
        return f"{micros / 1_000:.1f}ms"
    if micros < 60_000_000:
        return f"{micros / 1_000_000:.2f}s"
    minutes, seconds = divmod(micros // 1_000_000, 60)
    return f"{minutes}m {seconds:02d}s"


def short_error_type(error_type: str | None) -> str:
    """An error type as every display names it: its class name (``GatewayTimeout``,
    not ``span_tree.demo.GatewayTimeout``; csv/json keep the stored full name)."""
    return (error_type or "").rsplit(".", 1)[-1]


def span_label(span: FinishedSpan) -> Text:
    """One line for a span: status mark, name, duration, error."""
    if span.status == STATUS_FAILED:
        mark, style = "✗", "bold red"
    elif span.status == STATUS_STARTED:
        mark, style = "…", "yellow"
    else:
        mark, style = "✓", "green"
    label = Text()
    label.append(f"{mark} ", style=style)
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


def causal_items(
    span: FinishedSpan, children: Sequence[FinishedSpan], events: Sequence[Event]
) -> list[FinishedSpan | Event]:
    """A span's children and log events in the order they happened.

    ``seq`` orders what one process recorded for a trace. A child from another process
    (a service this span called: its ``seq`` restarts at 1 there, so it is not greater
    than this span's) is placed by its start time among them instead.

    Args:
        span: the parent span.
        children: its child spans (newest versions).
        events: the events of ``span`` to show.
    """
    local: list[FinishedSpan | Event] = [*events]
    remote: list[FinishedSpan] = []
    for child in children:
        if span.seq > 0 and child.seq > span.seq and _same_process(span, child):
            local.append(child)
        else:
            remote.append(child)
    local.sort(key=lambda item: item.seq)
    if not remote:
        return local
    remote.sort(key=lambda child: (child.start_time, child.seq))
    merged: list[FinishedSpan | Event] = []
    position = 0
    for item in local:
        while position < len(remote) and remote[position].start_time < _item_time(item):
            merged.append(remote[position])
            position += 1
        merged.append(item)
    merged.extend(remote[position:])
    return merged


def causal_order(spans: Sequence[FinishedSpan]) -> list[FinishedSpan]:
    """The spans of a trace in start order, each after the span that started it.

    Start times come from different clocks when a trace crosses processes or hosts: a
    callee whose clock runs behind would sort before the caller's span that called it.
    Each span sorts at the later of its own start and its parent's (effective) start,
    and after its parent when they tie; seq breaks the remaining ties within a process.

    Args:
        spans: the newest version of each span of one trace.
    """
    by_id = {span.span_id: span for span in spans}
    placed: dict[str, tuple[int, int]] = {}  # span id -> (effective start, depth)
    for span in spans:
        chain: list[FinishedSpan] = []
        current: FinishedSpan | None = span
        while current is not None and current.span_id not in placed:
            if len(chain) > len(by_id):  # a corrupt parent cycle: stop climbing
                break
            chain.append(current)
            current = by_id.get(current.parent_id) if current.parent_id else None
        start, depth = (
            placed[current.span_id]
            if current is not None and current.span_id in placed
            else (0, -1)
        )
        for link in reversed(chain):
            start, depth = max(start, link.start_time), depth + 1
            placed.setdefault(link.span_id, (start, depth))
    return sorted(spans, key=lambda span: (*placed[span.span_id], span.start_time, span.seq))


def _same_process(parent: FinishedSpan, child: FinishedSpan) -> bool:
    return (parent.host, parent.pid) == (child.host, child.pid)


def _traceback_text(title: str, traceback: str, style: str) -> Text:
    text = Text(title, style=f"bold {style}")
    text.append("\n" + traceback.rstrip(), style=style)
    return text


def _item_time(item: FinishedSpan | Event) -> int:
    return item.time if isinstance(item, Event) else item.start_time


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
