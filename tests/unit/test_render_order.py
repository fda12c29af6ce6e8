"""Causal order of a span's children and log lines across processes."""

from __future__ import annotations

from test_analytics_fixtures import BASE_US, make_span, trace_id

from span_tree._record import Event, FinishedSpan
from span_tree.render import causal_items


def _event(time_us: int, seq: int, message: str) -> Event:
    return Event(time_us, seq, "INFO", "app", message, None, None, {})


def test_a_child_from_another_process_is_placed_by_time() -> None:
    """seq orders one process's items; a callee's span (seq 1 there) goes by its start time."""
    trace = trace_id("order", BASE_US)
    parent = make_span(trace, "caller", start_us=BASE_US, duration_us=900, seq=3)
    local = make_span(
        trace, "local", start_us=BASE_US + 500, duration_us=10, parent=parent.span_id, seq=6
    )
    remote = make_span(
        trace, "remote", start_us=BASE_US + 300, duration_us=100, parent=parent.span_id, seq=1
    )._replace(pid=4242)
    events = [_event(BASE_US + 200, 4, "before"), _event(BASE_US + 450, 5, "after")]
    items = causal_items(parent, [local, remote], events)
    assert ["before", "remote", "after", "local"] == [
        item.name if isinstance(item, FinishedSpan) else item.message for item in items
    ]


def test_rows_without_seq_are_ordered_by_time() -> None:
    """Spans written without seq (0) fall back to start time for children."""
    trace = trace_id("old", BASE_US)
    parent = make_span(trace, "root", start_us=BASE_US, duration_us=900, seq=0)
    kids = [
        make_span(trace, name, start_us=BASE_US + at, duration_us=1, parent=parent.span_id, seq=0)
        for name, at in (("second", 20), ("first", 10))
    ]
    assert ["first", "second"] == [
        item.name for item in causal_items(parent, kids, []) if isinstance(item, FinishedSpan)
    ]
