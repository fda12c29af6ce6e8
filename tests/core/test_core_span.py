"""Spans as context managers and decorators: names, attributes, status, errors, tags."""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from pathlib import Path

import pytest

import span_tree
from span_tree import FinishedSpan
from span_tree.sinks.memory import MemorySink


def finished(sink: MemorySink) -> dict[str, FinishedSpan]:
    """Flush and return the finished records by name."""
    assert span_tree.flush(5.0)
    return {record.name: record for record in sink.spans if record.status != "started"}


def test_with_span_records_name_attributes_and_status(memory_sink: MemorySink) -> None:
    """`with span("load", user=42)` records one succeeded root span with its attribute."""
    with span_tree.span("load", user=42):
        pass
    record = finished(memory_sink)["load"]
    assert {"user": 42} == dict(record.attributes)
    assert "succeeded" == record.status
    assert record.parent_id is None
    assert record.end_time is not None
    assert record.duration_us == record.end_time - record.start_time
    assert 1 == len(memory_sink.spans)


def test_span_location_is_the_calling_code(memory_sink: MemorySink) -> None:
    """A `with` span's file/line/function point at the `with` statement, not span_tree."""
    line = sys._getframe().f_lineno + 1
    with span_tree.span("here"):
        pass
    record = finished(memory_sink)["here"]
    assert (__file__, line, "test_span_location_is_the_calling_code") == (
        record.file,
        record.line,
        record.function,
    )


def test_locations_of_one_batch_are_told_apart(memory_sink: MemorySink) -> None:
    """Spans of one batch from one code object at two lines, from another function and
    from a decorated one each keep their own file, line and function."""

    def elsewhere() -> int:
        with span_tree.span("elsewhere"):
            return sys._getframe().f_lineno - 1

    @span_tree.span
    def decorated() -> None:
        pass

    first = sys._getframe().f_lineno + 3
    second = first + 2
    for _ in range(3):
        with span_tree.span("first"):
            pass
        with span_tree.span("second"):
            pass
    third = elsewhere()
    decorated()
    here = "test_locations_of_one_batch_are_told_apart"
    assert span_tree.flush(5.0)
    expected = [("first", first, here), ("second", second, here)] * 3 + [
        ("elsewhere", third, f"{here}.<locals>.elsewhere"),
        ("test_locations_of_one_batch_are_told_apart.<locals>.decorated",
         decorated.__wrapped__.__code__.co_firstlineno, f"{here}.<locals>.decorated"),
    ]  # fmt: skip
    assert expected == [(r.name, r.line, r.function) for r in memory_sink.spans]
    assert {__file__} == {r.file for r in memory_sink.spans}


def test_traces_threads_and_names_of_one_batch_are_told_apart(memory_sink: MemorySink) -> None:
    """A batch mixing two traces (with their own tags), two threads and two names keeps
    each span's trace id, tags, thread and name; a batch of one of each repeats them."""
    import threading

    def job(tag: str) -> None:
        with span_tree.span(f"root {tag}") as root:
            root.set_tags(job=tag)
            for _ in range(3):
                with span_tree.span("step"):
                    pass

    worker = threading.Thread(target=job, args=("b",), name="second-thread")
    job("a")
    worker.start()
    worker.join()
    assert span_tree.flush(5.0)
    rows = {(r.name, r.thread, dict(r.tags).get("job")) for r in memory_sink.spans}
    here = threading.current_thread().name
    assert {("root a", here, "a"), ("step", here, "a"), ("root b", "second-thread", "b"),
            ("step", "second-thread", "b")} == rows  # fmt: skip
    trace_of = {r.span_id: r.trace_id for r in memory_sink.spans}
    assert 2 == len(set(trace_of.values()))
    assert all(trace_of[r.parent_id] == r.trace_id for r in memory_sink.spans if r.parent_id)


def test_a_batch_of_one_decorated_function_keeps_its_line(memory_sink: MemorySink) -> None:
    """Spans of one decorated function only (one code object, one given line) are each
    stored at the function's line."""

    @span_tree.span
    def decorated() -> None:
        pass

    for _ in range(3):
        decorated()
    assert span_tree.flush(5.0)
    line = decorated.__wrapped__.__code__.co_firstlineno
    assert [(__file__, line)] * 3 == [(r.file, r.line) for r in memory_sink.spans]


def test_bare_with_span_is_named_after_calling_function(memory_sink: MemorySink) -> None:
    """`with span():` without a name takes the calling function's name."""

    def load_user() -> None:
        with span_tree.span():
            pass

    load_user()
    names = list(finished(memory_sink))
    assert ["test_bare_with_span_is_named_after_calling_function.<locals>.load_user"] == names


def test_bare_decorator_uses_qualname(memory_sink: MemorySink) -> None:
    """`@span` names the span after the function's `__qualname__` and keeps its result."""

    class Service:
        @span_tree.span
        def handle(self, value: int) -> int:
            return value * 2

    assert 8 == Service().handle(4)
    record = finished(memory_sink)[Service.handle.__qualname__]
    assert "test_bare_decorator_uses_qualname.<locals>.Service.handle" == record.name
    assert __file__ == record.file
    assert "succeeded" == record.status


def test_named_decorator_and_called_decorator(memory_sink: MemorySink) -> None:
    """`@span("name", k=v)` and `@span()` both decorate; the function's metadata is kept."""

    @span_tree.span("custom", kind_of="job")
    def job() -> str:
        """Docstring."""
        return "done"

    @span_tree.span()
    def other() -> None:
        pass

    assert "done" == job()
    other()
    records = finished(memory_sink)
    assert {"kind_of": "job"} == dict(records["custom"].attributes)
    assert "test_named_decorator_and_called_decorator.<locals>.other" in records
    assert "Docstring." == job.__doc__
    assert "job" == job.__name__


def test_decorated_function_opens_a_new_span_per_call(memory_sink: MemorySink) -> None:
    """Each call of a decorated function is its own span with its own id."""

    @span_tree.span("call")
    def call() -> None:
        pass

    call()
    call()
    span_tree.flush(5.0)
    ids = {record.span_id for record in memory_sink.spans}
    assert 2 == len(ids)


def test_decorated_call_gives_the_context_back_to_the_caller(memory_sink: MemorySink) -> None:
    """After a decorated call the caller's span is current again, also when the function
    ended its own span early; the call's span is the caller's child."""

    @span_tree.span("plain")
    def plain() -> str:
        current = span_tree.current_span()
        assert current is not None
        return current.name or ""

    @span_tree.span("ends_itself")
    def ends_itself() -> None:
        current = span_tree.current_span()
        assert current is not None
        current.__exit__(None, None, None)

    with span_tree.span("outer") as outer:
        assert "plain" == plain()
        assert outer is span_tree.current_span()
        ends_itself()
        assert outer is span_tree.current_span()
    assert span_tree.current_span() is None
    records = finished(memory_sink)
    assert records["outer"].span_id == records["plain"].parent_id
    assert records["outer"].span_id == records["ends_itself"].parent_id


async def test_async_decorator_covers_the_whole_await(memory_sink: MemorySink) -> None:
    """An async function's span starts at the call and ends after the awaited work."""
    inner_end: list[int] = []

    @span_tree.span
    async def fetch() -> int:
        await asyncio.sleep(0.02)
        with span_tree.span("inside"):
            await asyncio.sleep(0)
        inner_end.append(1)
        return 7

    assert 7 == await fetch()
    records = finished(memory_sink)
    outer = records[fetch.__qualname__]
    inside = records["inside"]
    assert outer.span_id == inside.parent_id
    assert outer.start_time <= inside.start_time
    assert outer.end_time is not None and inside.end_time is not None
    assert inside.end_time <= outer.end_time
    assert (outer.duration_us or 0) >= 20_000
    assert outer.task is not None


async def test_async_failure_marks_span_failed(memory_sink: MemorySink) -> None:
    """An exception escaping an async span fails it and is re-raised unchanged."""
    error = KeyError("missing")

    @span_tree.span("async-fail")
    async def fail() -> None:
        await asyncio.sleep(0)
        raise error

    with pytest.raises(KeyError) as raised:
        await fail()
    assert error is raised.value
    record = finished(memory_sink)["async-fail"]
    assert ("failed", "KeyError") == (record.status, record.error_type)


def test_current_span_adds_attributes_and_is_none_outside(memory_sink: MemorySink) -> None:
    """`current_span()` is the active span inside and None outside any span."""
    assert span_tree.current_span() is None
    with span_tree.span("work") as opened:
        current = span_tree.current_span()
        assert opened is current
        assert current is not None
        current.set_attribute("rows", 3)
        current.set_attributes(table="users", ok=True)
        assert 16 == len(current.span_id)
        assert 27 == len(current.trace_id)
    assert span_tree.current_span() is None
    record = finished(memory_sink)["work"]
    assert {"rows": 3, "table": "users", "ok": True} == dict(record.attributes)


def test_set_tags_copies_trace_tags_onto_every_span(memory_sink: MemorySink) -> None:
    """Tags set inside a trace appear on its root and later spans, not on other traces."""
    with span_tree.span("root"):
        span_tree.set_tags(env="prod", build=7)
        with span_tree.span("child"), span_tree.span("grandchild"):
            pass
    with span_tree.span("other-trace"):
        pass
    records = finished(memory_sink)
    for name in ("root", "child", "grandchild"):
        assert {"env": "prod", "build": "7"} == dict(records[name].tags)
    assert {} == dict(records["other-trace"].tags)


def test_span_set_tags_is_trace_wide(memory_sink: MemorySink) -> None:
    """`Span.set_tags` on a child sets the tags of the whole trace."""
    with span_tree.span("root"), span_tree.span("child") as child:
        child.set_tags(user="u1")
    records = finished(memory_sink)
    assert {"user": "u1"} == dict(records["root"].tags)
    assert {"user": "u1"} == dict(records["child"].tags)


def test_set_tags_outside_a_span_applies_to_future_traces(memory_sink: MemorySink) -> None:
    """`set_tags` outside any span sets tags for every trace started afterwards."""
    span_tree.set_tags(region="eu")
    with span_tree.span("after"):
        pass
    assert {"region": "eu"} == dict(finished(memory_sink)["after"].tags)


def test_configure_tags_and_resource_fields(memory_sink: MemorySink) -> None:
    """`configure(namespace, app, app_version, tags)` fills those fields on each span."""
    sink = MemorySink()
    span_tree.configure(
        sinks=[sink],
        console=False,
        jsonl=False,
        store=None,
        namespace="billing",
        app="invoicer",
        app_version="1.2.3",
        tags={"env": "test"},
    )
    with span_tree.span("x"):
        pass
    record = finished(sink)["x"]
    assert ("billing", "invoicer", "1.2.3") == (record.namespace, record.app, record.app_version)
    assert {"env": "test"} == dict(record.tags)
    assert time.strftime("%Y-%m-%d", time.gmtime(record.start_time / 1e6)) == record.date


def test_nested_spans_form_a_tree(memory_sink: MemorySink) -> None:
    """Nested spans share the trace id and point at their parent."""
    with span_tree.span("a") as a, span_tree.span("b") as b:
        with span_tree.span("c"):
            pass
        assert a.trace_id == b.trace_id
    records = finished(memory_sink)
    assert records["a"].span_id == records["b"].parent_id
    assert records["b"].span_id == records["c"].parent_id
    assert 1 == len({record.trace_id for record in records.values()})


def test_escaping_exception_fails_span_and_reraises_same_object(memory_sink: MemorySink) -> None:
    """An exception leaving a span marks it failed with type/message/traceback, unchanged."""
    error = ValueError("bad value 3")
    with pytest.raises(ValueError) as raised, span_tree.span("step"):
        raise error
    assert error is raised.value
    record = finished(memory_sink)["step"]
    assert "failed" == record.status
    assert "ERROR" == record.level
    assert ("ValueError", "bad value 3") == (record.error_type, record.error_message)
    assert record.error_traceback is not None
    assert "raise error" in record.error_traceback
    assert "ValueError: bad value 3" in record.error_traceback


def test_decorator_failure_reraises_same_object(memory_sink: MemorySink) -> None:
    """A decorated function's exception fails the span and propagates unchanged."""

    class DomainError(Exception):
        pass

    error = DomainError("nope")

    @span_tree.span("deco-fail")
    def fail() -> None:
        raise error

    with pytest.raises(DomainError) as raised:
        fail()
    assert error is raised.value
    record = finished(memory_sink)["deco-fail"]
    assert "failed" == record.status
    assert record.error_type is not None and record.error_type.endswith("DomainError")


def test_logger_exception_is_handled_error_span_succeeds(memory_sink: MemorySink) -> None:
    """`logger.exception` inside a span records a handled error; the span still succeeds."""
    logger = logging.getLogger("test.handled")
    with span_tree.span("tolerant"):
        try:
            raise RuntimeError("flaky backend")
        except RuntimeError:
            logger.exception("retrying")
    record = finished(memory_sink)["tolerant"]
    assert "succeeded" == record.status
    assert record.error_type is None
    assert 1 == len(record.handled_errors)
    handled = record.handled_errors[0]
    assert ("RuntimeError", "flaky backend") == (handled.type, handled.message)
    assert "RuntimeError: flaky backend" in handled.traceback
    assert ["retrying"] == [event.message for event in record.events]
    assert "ERROR" == record.events[0].level
    assert "ERROR" == record.level


def test_scope_can_be_entered_again(memory_sink: MemorySink) -> None:
    """One `span(...)` scope object opens a fresh span on each `with`."""
    scope = span_tree.span("reused")
    with scope as first:
        pass
    with scope as second:
        pass
    assert first.span_id != second.span_id
    span_tree.flush(5.0)
    assert 2 == len(memory_sink.spans)


def test_nested_reentry_of_one_scope(memory_sink: MemorySink) -> None:
    """Entering the same scope while it is active nests a child span."""
    scope = span_tree.span("rec")
    with scope as outer, scope as inner:
        assert outer.span_id == inner.parent_id
    span_tree.flush(5.0)
    assert 2 == len(memory_sink.spans)


def test_finished_span_is_frozen_and_slotted(memory_sink: MemorySink) -> None:
    """`FinishedSpan` cannot be mutated and has no per-instance `__dict__`."""
    with span_tree.span("frozen"):
        pass
    record = finished(memory_sink)["frozen"]
    assert isinstance(record, FinishedSpan)
    with pytest.raises(AttributeError):
        record.name = "changed"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        record.extra = 1  # type: ignore[attr-defined]
    assert not hasattr(record, "__dict__")
    assert () == vars(FinishedSpan)["__slots__"]


def test_disabled_tracing_records_nothing(memory_sink: MemorySink) -> None:
    """`configure(enabled=False)` turns spans into no-ops that still run the code."""
    sink = MemorySink()
    span_tree.configure(sinks=[sink], console=False, jsonl=False, store=None, enabled=False)

    @span_tree.span
    def compute() -> int:
        return 5

    with span_tree.span("off"):
        value = compute()
        assert span_tree.current_span() is None
    assert 5 == value
    span_tree.flush(5.0)
    assert [] == sink.spans


def test_attributes_read_as_a_dict_and_changes_to_it_are_recorded(
    memory_sink: MemorySink,
) -> None:
    """A span made without attributes reads ``{}``; keys put into that dict are recorded."""
    with span_tree.span("plain") as plain:
        assert {} == plain.attributes
        plain.attributes["rows"] = 3
    assert {"rows": 3} == finished(memory_sink)["plain"].attributes


def test_the_shared_empty_attributes_stay_empty_through_every_shipped_sink(
    tmp_path: Path,
) -> None:
    """Records of spans without attributes or tags, and log events without extras, share
    one empty mapping; the listener, memory, JSON-lines, console and Parquet sinks and the
    OTLP encoder read it without adding to it, and each record still reads empty."""
    import io

    from span_tree import _span
    from span_tree.otel._outbound import export_request
    from span_tree.sinks.console import ConsoleSink
    from span_tree.sinks.jsonl import JsonlSink
    from span_tree.sinks.parquet import ParquetSink
    from span_tree.testing import capture_spans

    memory = MemorySink()
    parquet = ParquetSink(str(tmp_path / "store"))
    sinks = [memory, JsonlSink(io.StringIO()), ConsoleSink(io.StringIO()), parquet]
    span_tree.configure(sinks=sinks, console=False, jsonl=False, store=None)
    with capture_spans() as captured:
        with span_tree.span("outer"), span_tree.span("inner"):
            logging.getLogger("shared.empty").warning("no extras")
        assert span_tree.flush(5.0)
    export_request(memory.spans)
    records = [*memory.spans, *captured]
    assert {} == _span._NO_ATTRIBUTES
    assert [{}] * len(records) == [dict(record.attributes) for record in records]
    assert [{}] * len(records) == [dict(record.tags) for record in records]
    events = [event for record in records for event in record.events]
    assert ["no extras"] * 2 == [event.message for event in events]
    assert [{}, {}] == [dict(event.attributes) for event in events]
