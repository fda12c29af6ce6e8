"""`logging` inside spans becomes events; the logger-style API (`get_logger`)."""

from __future__ import annotations

import inspect
import logging
import sys

import pytest

import span_tree
from span_tree import FinishedSpan
from span_tree.sinks.memory import MemorySink


@pytest.fixture(autouse=True)
def debug_level(caplog: pytest.LogCaptureFixture) -> None:
    """Let DEBUG/INFO records through the root logger (pytest's handlers keep it WARNING)."""
    caplog.set_level(logging.DEBUG)


def by_name(sink: MemorySink) -> dict[str, FinishedSpan]:
    """Flush and return the finished records by name."""
    assert span_tree.flush(5.0)
    return {record.name: record for record in sink.spans if record.status != "started"}


def test_log_record_inside_span_becomes_event(memory_sink: MemorySink) -> None:
    """A `logging` call inside a span is stored with time, level, logger, message, extras."""
    logger = logging.getLogger("shop.orders")
    with span_tree.span("order"):
        line = sys._getframe().f_lineno + 1
        logger.warning("order %s is late", 17, extra={"order_id": 17, "region": "eu"})
    record = by_name(memory_sink)["order"]
    assert 1 == len(record.events)
    event = record.events[0]
    assert ("WARNING", "shop.orders", "order 17 is late") == (
        event.level,
        event.logger,
        event.message,
    )
    assert {"order_id": 17, "region": "eu"} == dict(event.attributes)
    assert (__file__, line) == (event.file, event.line)
    assert record.start_time <= event.time <= (record.end_time or 0)
    assert "WARNING" == record.level


def test_levels_are_recorded_and_span_level_is_the_highest(memory_sink: MemorySink) -> None:
    """Every level lands as an event; the span's level is the most severe event's level."""
    logger = logging.getLogger("levels")
    with span_tree.span("levels"):
        logger.debug("d")
        logger.info("i")
        logger.error("e")
        logger.warning("w")
    record = by_name(memory_sink)["levels"]
    assert ["DEBUG", "INFO", "ERROR", "WARNING"] == [event.level for event in record.events]
    assert "ERROR" == record.level


def test_adapter_log_location_is_the_caller(memory_sink: MemorySink) -> None:
    """Records logged through `get_logger` point at the calling line, not the adapter."""
    log = span_tree.get_logger("adapter.test")
    with span_tree.span("adapted"):
        line = sys._getframe().f_lineno + 1
        log.info("through adapter", extra={"n": 1})
    event = by_name(memory_sink)["adapted"].events[0]
    assert (__file__, line, "adapter.test") == (event.file, event.line, event.logger)
    assert {"n": 1} == dict(event.attributes)


def test_log_extra_message_location_is_the_caller(memory_sink: MemorySink) -> None:
    """`log.log_extra(msg)` logs at the caller's line and sets attributes on the span."""
    log = span_tree.get_logger("extra.test")
    with span_tree.span("extras"):
        line = sys._getframe().f_lineno + 1
        log.log_extra("counted", logging.WARNING, rows=3)
    record = by_name(memory_sink)["extras"]
    assert {"rows": 3} == dict(record.attributes)
    event = record.events[0]
    assert ("counted", "WARNING", __file__, line) == (
        event.message,
        event.level,
        event.file,
        event.line,
    )


def test_app_handlers_still_receive_records(memory_sink: MemorySink) -> None:
    """Handlers the application installed get records inside and outside spans."""
    received: list[str] = []

    class ListHandler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            received.append(record.getMessage())

    logger = logging.getLogger("app.handlers")
    handler = ListHandler()
    logger.addHandler(handler)
    try:
        logger.info("outside")
        with span_tree.span("inside-span"):
            logger.info("inside")
    finally:
        logger.removeHandler(handler)
    assert ["outside", "inside"] == received
    assert ["inside"] == [e.message for e in by_name(memory_sink)["inside-span"].events]


def test_logging_outside_spans_records_nothing(memory_sink: MemorySink) -> None:
    """Records logged outside any span create no spans and no events."""
    logging.getLogger("nowhere").error("not in a span")
    span_tree.flush(5.0)
    assert [] == memory_sink.spans


def test_capture_logging_false_keeps_events_out(memory_sink: MemorySink) -> None:
    """`configure(capture_logging=False)` leaves log records out of spans."""
    sink = MemorySink()
    span_tree.configure(sinks=[sink], console=False, jsonl=False, store=None, capture_logging=False)
    with span_tree.span("quiet"):
        logging.getLogger("x").warning("not captured")
    assert () == by_name(sink)["quiet"].events


def test_events_and_children_interleave_in_causal_order(memory_sink: MemorySink) -> None:
    """Events and child spans carry `seq` numbers in the order they happened."""
    logger = logging.getLogger("order")
    with span_tree.span("parent"):
        logger.info("first")
        with span_tree.span("child-1"):
            logger.info("inside child")
        logger.info("second")
        with span_tree.span("child-2"):
            pass
        logger.info("third")
    records = by_name(memory_sink)
    parent = records["parent"]
    items = [(event.seq, event.message) for event in parent.events]
    items += [(records[name].seq, name) for name in ("child-1", "child-2")]
    assert ["first", "child-1", "second", "child-2", "third"] == [
        label for _, label in sorted(items)
    ]
    assert parent.seq < records["child-1"].events[0].seq < parent.events[1].seq


def test_get_logger_is_a_logger_adapter() -> None:
    """`get_logger(__name__)` returns a `logging.LoggerAdapter` for that logger."""
    log = span_tree.get_logger(__name__)
    assert isinstance(log, logging.LoggerAdapter)
    assert isinstance(log, span_tree.SpanLogger)
    assert __name__ == log.logger.name


def test_log_call_opens_a_span_with_attributes(memory_sink: MemorySink) -> None:
    """`with log("name", **attrs)` and `log.new_span(...)` open spans in the current trace."""
    log = span_tree.get_logger("api")
    with log("handler", route="/x") as outer, log.new_span("sub", step=2) as inner:
        assert outer.span_id == inner.parent_id
    records = by_name(memory_sink)
    assert {"route": "/x"} == dict(records["handler"].attributes)
    assert {"step": 2} == dict(records["sub"].attributes)
    assert records["handler"].trace_id == records["sub"].trace_id


def test_log_span_decorators(memory_sink: MemorySink) -> None:
    """`@log.span` and `@log.span("name")` decorate like `@span_tree.span`."""
    log = span_tree.get_logger("deco")

    @log.span
    def plain() -> int:
        return 1

    @log.span("renamed", flag=True)
    def named() -> int:
        return 2

    assert (1, 2) == (plain(), named())
    records = by_name(memory_sink)
    assert plain.__qualname__ in records
    assert {"flag": True} == dict(records["renamed"].attributes)


def test_log_extra_ref_src_and_ref_dest_join_two_traces(memory_sink: MemorySink) -> None:
    """`log_extra(ref_src=True)` returns a ref in `ref_src`; `ref_dest=ref` records it."""
    log = span_tree.get_logger("refs")
    with log("producer"):
        ref = log.log_extra(ref_src=True)
    with log("consumer"):
        assert log.log_extra(ref_dest=ref or "") is None
    records = by_name(memory_sink)
    assert ref is not None
    assert (ref,) == records["producer"].ref_src
    assert (ref,) == records["consumer"].ref_dest
    assert () == records["producer"].ref_dest
    assert records["producer"].trace_id != records["consumer"].trace_id
    assert () == records["producer"].events


def test_log_extra_outside_a_span_is_harmless(memory_sink: MemorySink) -> None:
    """`log_extra` with no current span still returns a ref and raises nothing."""
    log = span_tree.get_logger("nospan")
    ref = log.log_extra(ref_src=True, key="v")
    assert ref is not None and 27 == len(ref)


def test_force_new_trace_links_the_current_trace(memory_sink: MemorySink) -> None:
    """`force_new_trace=True` starts a new root trace listing the current one in `links`."""
    log = span_tree.get_logger("links")
    with log("request"), log("background", force_new_trace=True), log("nested-in-new"):
        pass
    records = by_name(memory_sink)
    request, background = records["request"], records["background"]
    assert background.parent_id is None
    assert request.trace_id != background.trace_id
    assert (request.trace_id,) == background.links
    assert (request.trace_id,) == records["nested-in-new"].links
    assert () == request.links


def test_force_new_trace_without_current_trace_has_no_links(memory_sink: MemorySink) -> None:
    """`force_new_trace=True` with no active span simply starts a trace."""
    log = span_tree.get_logger("links")
    with log("alone", force_new_trace=True):
        pass
    assert () == by_name(memory_sink)["alone"].links


def test_adapter_extra_merges_with_call_extra(memory_sink: MemorySink) -> None:
    """A `SpanLogger` built with `extra` keeps both its and the call's extras."""
    log = span_tree.SpanLogger(logging.getLogger("merge"), {"service": "s1"})
    with span_tree.span("merged"):
        log.info("m", extra={"call": 1})
    event = by_name(memory_sink)["merged"].events[0]
    assert {"service": "s1", "call": 1} == dict(event.attributes)


def test_late_log_into_ended_span_is_counted(memory_sink: MemorySink) -> None:
    """A record aimed at a span that already ended is dropped and counted, not raised."""
    with span_tree.span("gone") as gone:
        pass
    before = span_tree.stats()["late_events"]
    gone.add_event("too late")
    assert before + 1 == span_tree.stats()["late_events"]


def test_log_span_decorator_location_is_the_user_function(memory_sink: MemorySink) -> None:
    """A span from `@log.span` points at the decorated function, not span_tree."""
    log = span_tree.get_logger("where")

    @log.span("located")
    def located() -> None:
        pass

    located()
    record = by_name(memory_sink)["located"]
    code = inspect.unwrap(located).__code__
    assert (__file__, code.co_firstlineno, code.co_qualname) == (
        record.file,
        record.line,
        record.function,
    )


def test_dictconfig_replacing_root_handlers_is_recovered_at_next_trace(
    memory_sink: MemorySink,
) -> None:
    """After dictConfig drops root's handlers, records inside the next trace are events again."""
    import logging.config

    logging.config.dictConfig(
        {
            "version": 1,
            "root": {"level": "INFO", "handlers": []},
            "incremental": False,
            # The default (True) would disable every logger other tests already made.
            "disable_existing_loggers": False,
        }
    )
    try:
        with span_tree.span("after-dictconfig"):
            logging.getLogger("app").info("still captured")
        span_tree.flush(5)
        assert ["still captured"] == [e.message for e in memory_sink.spans[-1].events]
    finally:
        logging.getLogger().setLevel(logging.WARNING)


def test_extras_are_found_whether_or_not_another_handler_formatted_the_record(
    memory_sink: MemorySink,
) -> None:
    """Formatting by an application handler adds no extras; `extra=` keys are kept either way."""
    import io

    formatted = logging.getLogger("formatted")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    formatted.addHandler(handler)
    plain = logging.getLogger("plain")
    try:
        with span_tree.span("logged"):
            plain.info("bare")
            plain.info("with extra", extra={"order": 1})
            formatted.info("formatted bare")
            formatted.info("formatted with extra", extra={"order": 2})
    finally:
        formatted.removeHandler(handler)
    events = by_name(memory_sink)["logged"].events
    assert [{}, {"order": 1}, {}, {"order": 2}] == [dict(event.attributes) for event in events]
    assert 2 == len(stream.getvalue().splitlines())


def test_a_record_factory_s_own_get_message_is_used(memory_sink: MemorySink) -> None:
    """A record class from logging.setLogRecordFactory that defines getMessage keeps it;
    a message given as another object is stored as its text."""

    class Prefixed(logging.LogRecord):
        def getMessage(self) -> str:  # logging's name
            return "[app] " + super().getMessage()

    logger = logging.getLogger("factory.test")
    before = logging.getLogRecordFactory()
    with span_tree.span("custom"):
        logger.info({"n": 1})
        logging.setLogRecordFactory(Prefixed)
        try:
            logger.info("x=%d", 2)
        finally:
            logging.setLogRecordFactory(before)
    events = by_name(memory_sink)["custom"].events
    assert ["{'n': 1}", "[app] x=2"] == [event.message for event in events]
