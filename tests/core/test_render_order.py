"""Causal order across processes: a span's children and log lines, a trace's spans."""

from __future__ import annotations

from pathlib import Path

from support.analytics_store import BASE_US, make_span, trace_id

from span_tree._display import causal_items
from span_tree._record import Event, FinishedSpan
from span_tree.analytics import Store
from span_tree.storage import open_store, write_spans


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


def test_store_trace_puts_a_callee_with_a_slow_clock_after_its_caller(tmp_path: Path) -> None:
    """Store.trace: a callee whose clock is 5 ms behind still comes after the calling span."""
    trace = trace_id("skew", BASE_US)
    root = make_span(trace, "caller", start_us=BASE_US, duration_us=9_000, seq=1)
    call = make_span(
        trace, "GET inventory", start_us=BASE_US + 1_000, duration_us=3_000,
        parent=root.span_id, seq=2,
    )  # fmt: skip
    callee = make_span(
        trace, "GET /items/{item_id}", start_us=BASE_US - 4_000, duration_us=2_000,
        parent=call.span_id, seq=1,
    )._replace(pid=4242, host="other")  # fmt: skip
    later = make_span(
        trace, "after", start_us=BASE_US + 5_000, duration_us=10, parent=root.span_id, seq=5
    )
    write_spans(open_store(str(tmp_path)), [later, callee, call, root])
    with Store(str(tmp_path)) as store:
        names = [span.name for span in store.trace(trace)]
    assert ["caller", "GET inventory", "GET /items/{item_id}", "after"] == names
