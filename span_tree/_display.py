"""How every face writes a span's facts: durations, error types, and the causal order of
a trace (stdlib only, shared by the console sink, the CLI, the TUI and `Store.trace`)."""

from __future__ import annotations

from collections.abc import Sequence

from span_tree._record import STATUS_FAILED, STATUS_STARTED, Event, FinishedSpan


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


def status_mark(status: str) -> str:
    """The one-character mark of a span status: ✗ failed, … still running, ✓ done."""
    if status == STATUS_FAILED:
        return "✗"
    if status == STATUS_STARTED:
        return "…"
    return "✓"


def short_error_type(error_type: str | None) -> str:
    """An error type as every display names it: its class name (``GatewayTimeout``,
    not ``span_tree._commands.demo.GatewayTimeout``; csv/json keep the stored full name)."""
    return (error_type or "").rsplit(".", 1)[-1]


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


def _item_time(item: FinishedSpan | Event) -> int:
    return item.time if isinstance(item, Event) else item.start_time
