"""Code written for span-tree 0.0.4 runs unchanged and records into today's model."""

from __future__ import annotations

import logging

import pytest

from span_tree import get_logger, getLogger, logger_log_extra, new_span
from span_tree.api import SpanLogger, as_log_extra, log_extra, span
from span_tree.sinks.memory import MemorySink


def run_004_program() -> None:
    """The block from the 0.0.4 README, as its users wrote it."""
    logger = get_logger(__name__)
    assert isinstance(logger, SpanLogger)
    assert isinstance(getLogger(__name__), SpanLogger)

    @logger.span
    def handler(msg: str) -> str:
        logger.log_extra(handled=msg)
        return msg

    @logger.span("renamed", force_new_trace=True)
    def detached() -> None:
        pass

    with logger.new_span("root", force_new_trace=False, user=1):
        logger.log_extra(in_root=True)
        ref = logger.log_extra("sent", ref_src=True)
        assert ref
        with logger("child", step=2):
            logger.log_extra(ref_dest=ref)
            handler("hello")
        detached()
        log, log_extra_fn = logger_log_extra(__name__)
        assert isinstance(log, logging.Logger)
        log_extra_fn("from the bound function", logging.WARNING, bound=True)
        log_extra(log, module_level=True)
        as_log_extra(log)(via_partial=True)

    @span
    def bare() -> None:
        pass

    @span("named", True)
    def positional_force() -> None:
        pass

    with new_span("job", force_new_trace=True):
        bare()
    positional_force()


def test_004_program_records_the_expected_tree(
    memory_sink: MemorySink, caplog: pytest.LogCaptureFixture
) -> None:
    """Names, parents, log_extra attributes, ref ids and force_new_trace links as in 0.0.4."""
    import span_tree

    caplog.set_level(logging.INFO, logger=__name__)  # pytest leaves the root at WARNING
    run_004_program()
    span_tree.flush()
    by_name = {record.name: record for record in memory_sink.spans}
    root, child = by_name["root"], by_name["child"]
    handler = by_name["run_004_program.<locals>.handler"]
    assert {
        "user": 1,
        "in_root": True,
        "bound": True,
        "module_level": True,
        "via_partial": True,
    } == (root.attributes)
    assert {"step": 2} == child.attributes
    assert {"handled": "hello"} == handler.attributes
    assert (root.span_id, child.span_id) == (child.parent_id, handler.parent_id)
    assert {root.trace_id} == {child.trace_id, handler.trace_id}
    # ref_src/ref_dest: the returned reference id is recorded on both ends.
    assert 1 == len(root.ref_src)
    assert root.ref_src == child.ref_dest
    # log_extra with a message also logs it as an event of the current span.
    assert ["sent", "from the bound function"] == [event.message for event in root.events]
    assert "WARNING" == root.events[1].level
    assert [__file__, __file__] == [event.file for event in root.events]  # the caller's line
    # force_new_trace: a new trace whose links name the trace it was started from.
    renamed = by_name["renamed"]
    assert (None, (root.trace_id,)) == (renamed.parent_id, renamed.links)
    assert renamed.trace_id != root.trace_id
    job, bare = by_name["job"], by_name["run_004_program.<locals>.bare"]
    assert (job.span_id, job.trace_id) == (bare.parent_id, bare.trace_id)
    assert () == job.links  # nothing was current, so nothing to link
    named = by_name["named"]
    assert (None, ()) == (named.parent_id, named.links)
    assert {"force_new_trace", "kind"}.isdisjoint(
        key for record in memory_sink.spans for key in record.attributes
    )


def test_force_new_trace_and_kind_are_parameters_of_span(memory_sink: MemorySink) -> None:
    """span_tree.span takes force_new_trace and kind as options, not as attributes."""
    import span_tree

    with span_tree.span("outer"), span_tree.span("server", kind="server", force_new_trace=True):
        pass
    span_tree.flush()
    by_name = {record.name: record for record in memory_sink.spans}
    server = by_name["server"]
    assert ("server", {}) == (server.kind, server.attributes)
    assert (by_name["outer"].trace_id,) == server.links
