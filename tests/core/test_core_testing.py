"""Test-mode: `span_tree.testing.capture_spans()` yields a live list of finished records."""

from __future__ import annotations

import logging
import threading

import pytest

import span_tree
from span_tree import FinishedSpan, _runtime
from span_tree.testing import CapturedSpans, capture_spans


def test_capture_spans_is_live_and_synchronous() -> None:
    """Records appear in the list as each span ends, without a flush."""
    with capture_spans() as spans:
        assert isinstance(spans, CapturedSpans)
        with span_tree.span("outer"):
            with span_tree.span("inner"):
                pass
            assert ["inner"] == spans.names()
        assert ["inner", "outer"] == spans.names()
    assert all(isinstance(span, FinishedSpan) for span in spans)
    outer = spans.by_name("outer")
    assert ("outer", "succeeded", 27) == (outer.name, outer.status, len(outer.trace_id))
    assert outer.span_id == spans.by_name("inner").parent_id


def test_capture_spans_stops_at_block_end() -> None:
    """Spans ending after the block are not captured and the listener is removed."""
    with capture_spans() as spans:
        pass
    with span_tree.span("after"):
        pass
    assert [] == list(spans)
    assert [] == _runtime.listeners


def test_capture_spans_nested_blocks_each_capture() -> None:
    """Nested capture blocks each receive the spans ending inside them."""
    with capture_spans() as outer:
        with span_tree.span("a"):
            pass
        with capture_spans() as inner, span_tree.span("b"):
            pass
    assert ["a", "b"] == outer.names()
    assert ["b"] == inner.names()


def test_capture_spans_sees_threads_and_started_versions() -> None:
    """Spans from other threads and `started` versions of late children are captured."""
    release = threading.Event()
    started = threading.Event()

    def child() -> None:
        with span_tree.span("late"):
            started.set()
            release.wait(5.0)

    with capture_spans() as spans:
        with span_tree.span("root"):
            thread = threading.Thread(target=child)
            thread.start()
            assert started.wait(5.0)
        release.set()
        thread.join()
    assert [("late", "started"), ("root", "succeeded"), ("late", "succeeded")] == [
        (span.name, span.status) for span in spans
    ]
    assert ["root", "late"] == spans.names()


def test_by_name_missing_is_a_clear_key_error() -> None:
    """`by_name` of a span that was not captured raises KeyError listing what was."""
    with capture_spans() as spans, span_tree.span("present"):
        pass
    with pytest.raises(KeyError, match="present"):
        spans.by_name("absent")


def test_failing_listener_does_not_reach_the_caller() -> None:
    """An exception in a capture listener is counted, never raised into user code."""

    def broken(record: FinishedSpan) -> None:
        raise RuntimeError("listener bug")

    before = span_tree.stats()["listener_errors"]
    _runtime.listeners.append(broken)
    try:
        with span_tree.span("safe"):
            pass
    finally:
        _runtime.listeners.remove(broken)
    assert before + 1 == span_tree.stats()["listener_errors"]


def test_capture_spans_fixture(capture_spans: CapturedSpans) -> None:
    """The pytest plugin's `capture_spans` fixture captures this test's spans and INFO logs."""

    @span_tree.span
    def handler() -> None:
        logging.getLogger("handler").info("handled")

    handler()
    assert [handler.__qualname__] == capture_spans.names()
    assert ["handled"] == [e.message for e in capture_spans.by_name(handler.__qualname__).events]


def test_capture_spans_block_keeps_info_like_the_fixture() -> None:
    """`with capture_spans()` inside a pytest test keeps INFO events (pytest leaves the
    root logger at WARNING) and restores the root level afterwards."""
    root = logging.getLogger()
    assert root.level > logging.INFO  # as pytest leaves it

    @span_tree.span
    def handler() -> None:
        logging.getLogger("handler").info("handled")

    before = root.level
    with capture_spans() as spans:
        handler()
    assert ["handled"] == [e.message for e in spans.by_name(handler.__qualname__).events]
    assert before == root.level
