"""Bad input and misuse: clear errors or safe fallbacks, never a crash of the application."""

from __future__ import annotations

import contextvars
import json
import threading
from typing import Any

import pytest

import span_tree
from span_tree import FinishedSpan, SpanTreeWarning
from span_tree._record import span_to_json
from span_tree._sanitize import MAX_TEXT_CHARS
from span_tree.sinks.memory import MemorySink


def only(sink: MemorySink) -> FinishedSpan:
    """Flush and return the one recorded span."""
    assert span_tree.flush(5.0)
    assert 1 == len(sink.spans)
    return sink.spans[0]


class Opaque:
    """An object JSON cannot encode."""

    def __repr__(self) -> str:
        return "<Opaque 7>"


class BrokenRepr:
    """An object whose repr raises."""

    def __repr__(self) -> str:
        raise RuntimeError("no repr for you")


@pytest.mark.parametrize(
    ("name", "expected"),
    [(42, "42"), (3.5, "3.5"), (b"raw", "b'raw'"), (("a", 1), "('a', 1)")],
)
def test_non_string_span_names_become_text(
    memory_sink: MemorySink, name: Any, expected: str
) -> None:
    """`span(non_str)` records the name as `str(name)`."""
    with span_tree.span(name):
        pass
    assert expected == only(memory_sink).name


def test_non_string_names_through_the_logger_api(memory_sink: MemorySink) -> None:
    """`log(42)` and `log.new_span(("t",))` record text names too."""
    log = span_tree.get_logger("bad")
    with log(42):  # type: ignore[arg-type]
        pass
    with log.new_span(("t",)):  # type: ignore[arg-type]
        pass
    span_tree.flush(5.0)
    assert ["42", "('t',)"] == [span.name for span in memory_sink.spans]


def test_unserialisable_attributes_are_stored_as_repr(memory_sink: MemorySink) -> None:
    """Values JSON cannot encode are kept as their repr; containers stay containers."""
    with span_tree.span(
        "odd",
        obj=Opaque(),
        broken=BrokenRepr(),
        nested={"inner": Opaque(), 3: [1, Opaque()]},
        items=(1, "two", None),
        number=1.5,
    ):
        pass
    attributes = dict(only(memory_sink).attributes)
    assert "<Opaque 7>" == attributes["obj"]
    assert "<unrepresentable BrokenRepr: RuntimeError>" == attributes["broken"]
    assert {"inner": "<Opaque 7>", "3": [1, "<Opaque 7>"]} == attributes["nested"]
    assert [1, "two", None] == attributes["items"]
    assert 1.5 == attributes["number"]
    json.loads(span_to_json(memory_sink.spans[0]))


def test_huge_attribute_is_truncated_with_marker(memory_sink: MemorySink) -> None:
    """A huge string attribute is cut with a marker saying how much was cut."""
    huge = "x" * (MAX_TEXT_CHARS + 1_000)
    with span_tree.span("big", payload=huge, blob=[huge]):
        pass
    attributes = only(memory_sink).attributes
    expected = "x" * MAX_TEXT_CHARS + "…[truncated 1000 chars]"
    assert expected == attributes["payload"]
    assert [expected] == attributes["blob"]


def test_huge_collections_and_deep_nesting_are_bounded(memory_sink: MemorySink) -> None:
    """Long lists keep their first items; deep nesting ends in a repr; many keys are cut."""
    deep: Any = "bottom"
    for _ in range(10):
        deep = [deep]
    many = {f"k{i}": i for i in range(2_000)}
    with span_tree.span("bounded", long=list(range(1_000)), deep=deep, **many):
        pass
    attributes = only(memory_sink).attributes
    assert list(range(100)) == attributes["long"]
    assert isinstance(json.dumps(attributes["deep"]), str)
    assert "bottom" in json.dumps(attributes["deep"])
    assert 1_001 == len(attributes)
    assert 1_002 == attributes["_truncated_attributes"]


def test_exactly_the_attribute_limit_has_no_marker(memory_sink: MemorySink) -> None:
    """Exactly 1000 attributes are all kept with no truncation marker."""
    with span_tree.span("limit", **{f"k{i}": i for i in range(1_000)}):
        pass
    attributes = only(memory_sink).attributes
    assert 1_000 == len(attributes)
    assert "_truncated_attributes" not in attributes


def test_huge_error_message_is_truncated(memory_sink: MemorySink) -> None:
    """A huge exception message is truncated in `error_message`."""
    with pytest.raises(ValueError), span_tree.span("huge-error"):
        raise ValueError("e" * (MAX_TEXT_CHARS * 2))
    message = only(memory_sink).error_message or ""
    assert message.endswith(f"…[truncated {MAX_TEXT_CHARS} chars]")


def test_ending_a_span_twice_warns_and_keeps_first_end(memory_sink: MemorySink) -> None:
    """`end()` on an ended span gives a SpanTreeWarning and changes nothing."""
    with span_tree.span("twice") as opened:
        opened.end()
        with pytest.warns(SpanTreeWarning, match="already ended"):
            opened.end()
    record = only(memory_sink)
    assert "succeeded" == record.status


def test_set_attribute_after_end_warns_and_is_ignored(memory_sink: MemorySink) -> None:
    """Setting attributes on an ended span warns and does not change the record."""
    with span_tree.span("closed", a=1) as opened:
        pass
    with pytest.warns(SpanTreeWarning, match="after it ended"):
        opened.set_attribute("b", 2)
    with pytest.warns(SpanTreeWarning, match="after it ended"):
        opened.set_attributes(c=3)
    assert {"a": 1} == dict(only(memory_sink).attributes)


def test_exit_without_enter_warns(memory_sink: MemorySink) -> None:
    """`__exit__` on a span that was never entered warns and records nothing."""
    scope = span_tree.span("never-entered")
    with pytest.warns(SpanTreeWarning, match="without being entered"):
        scope.__exit__(None, None, None)
    span_tree.flush(5.0)
    assert [] == memory_sink.spans


def test_end_of_never_started_span_warns(memory_sink: MemorySink) -> None:
    """`end()` on a span that never started warns instead of raising."""
    with pytest.warns(SpanTreeWarning, match="never started"):
        span_tree.span("idle").end()


def test_exit_in_another_thread_warns_not_crashes(memory_sink: MemorySink) -> None:
    """Exiting a span object from a thread that did not enter it never raises."""
    scope = span_tree.span("cross-thread")
    scope.__enter__()
    errors: list[BaseException] = []

    def leave() -> None:
        try:
            scope.__exit__(None, None, None)
        except BaseException as error:
            errors.append(error)

    thread = threading.Thread(target=leave)
    thread.start()
    thread.join()
    scope.__exit__(None, None, None)
    assert [] == errors
    assert "cross-thread" == only(memory_sink).name
    assert span_tree.current_span() is None


def test_reentering_a_finished_span_records_a_new_span(memory_sink: MemorySink) -> None:
    """Entering an ended span object again records a fresh span, the first stays intact."""
    scope = span_tree.span("again", n=1)
    with scope as first:
        pass
    with scope as second:
        second.set_attribute("n", 2)
    span_tree.flush(5.0)
    assert [("again", {"n": 1}), ("again", {"n": 2})] == [
        (s.name, dict(s.attributes)) for s in memory_sink.spans
    ]
    assert first.span_id != second.span_id


def test_decorating_a_non_callable_is_a_clear_error() -> None:
    """`span("x")(42)` raises a TypeError naming the problem."""
    with pytest.raises(TypeError, match="decorates functions"):
        span_tree.span("x")(42)  # type: ignore[type-var]


def test_exception_in_user_code_with_broken_str_still_fails_span(
    memory_sink: MemorySink,
) -> None:
    """An exception whose `__str__` raises still fails the span and propagates."""

    class Weird(Exception):
        def __str__(self) -> str:
            raise RuntimeError("str broke")

    with pytest.raises(Weird), span_tree.span("weird"):
        raise Weird()
    record = only(memory_sink)
    assert "failed" == record.status


def test_keyboard_interrupt_fails_span_and_propagates(memory_sink: MemorySink) -> None:
    """BaseExceptions (KeyboardInterrupt) fail the span and propagate unchanged."""
    with pytest.raises(KeyboardInterrupt), span_tree.span("interrupted"):
        raise KeyboardInterrupt
    assert "KeyboardInterrupt" == only(memory_sink).error_type


def test_non_string_tag_values_become_text(memory_sink: MemorySink) -> None:
    """Tag values of any type are stored as text."""
    with span_tree.span("tagged"):
        span_tree.set_tags(count=3, flag=None, obj=Opaque())
    assert {"count": "3", "flag": "None", "obj": "<Opaque 7>"} == dict(only(memory_sink).tags)


def test_out_of_order_exit_warns(memory_sink: MemorySink) -> None:
    """Exiting an outer span while an inner one is still open gives a SpanTreeWarning."""

    def misuse() -> None:
        outer = span_tree.span("outer")
        inner = span_tree.span("inner")
        outer.__enter__()
        inner.__enter__()
        with pytest.warns(SpanTreeWarning, match="reverse order"):
            outer.__exit__(None, None, None)
        inner.__exit__(None, None, None)

    # In a context of its own: after such misuse the context returns to the ended span.
    contextvars.copy_context().run(misuse)
    span_tree.flush(5.0)
    finished = {span.name for span in memory_sink.spans if span.status != "started"}
    assert {"outer", "inner"} == finished


def test_empty_name_is_recorded_readably(memory_sink: MemorySink) -> None:
    """`span("")` records `<unnamed>`, so the jsonl line can be read back and ingested."""
    from span_tree._record import span_from_json_dict

    with span_tree.span(""):
        pass
    record = only(memory_sink)
    assert "<unnamed>" == record.name
    assert record == span_from_json_dict(json.loads(span_to_json(record)))


def test_huge_log_message_is_truncated_with_a_marker(memory_sink: MemorySink) -> None:
    """A log message over 64 KiB inside a span is cut, saying how much was cut."""
    import logging

    with span_tree.span("big"):
        logging.getLogger("huge").warning("x" * 70_000)
    span_tree.flush(5)
    message = memory_sink.spans[0].events[0].message
    assert message.startswith("x" * 65_536)
    assert message.endswith("…[truncated 4464 chars]")
