"""Stored tracebacks show the user's frames, not span_tree's own wrapper frames."""

from __future__ import annotations

import logging

import pytest

import span_tree
from span_tree.sinks.memory import MemorySink


@span_tree.span
def _inner() -> None:
    raise ValueError("deep")


@span_tree.span
def _outer() -> None:
    _inner()


async def _async_inner() -> None:
    raise KeyError("async")


def test_decorated_spans_store_no_wrapper_frame(memory_sink: MemorySink) -> None:
    """Each failed span's traceback runs from the user's function to the raise, no _span.py."""
    with pytest.raises(ValueError, match="deep"):
        _outer()
    assert span_tree.flush(5)
    tracebacks = {span.name: span.error_traceback or "" for span in memory_sink.spans}
    assert (False, False) == tuple("_span.py" in text for text in tracebacks.values())
    assert (["_outer", "_inner"], ["_inner"]) == (
        [name for name in ("_outer", "_inner") if f"in {name}" in tracebacks["_outer"]],
        [name for name in ("_outer", "_inner") if f"in {name}" in tracebacks["_inner"]],
    )


async def test_async_and_logged_errors_store_no_wrapper_frame(memory_sink: MemorySink) -> None:
    """An async decorated span, and an error logged inside a span, keep only user frames."""
    wrapped = span_tree.span(_async_inner)
    with span_tree.span("caller"):
        try:
            await wrapped()
        except KeyError:
            logger = logging.getLogger(f"{__name__}.caught")
            logger.disabled = False  # an earlier test's dictConfig may have disabled it
            logger.exception("caught")
    assert span_tree.flush(5)
    by_name = {span.name: span for span in memory_sink.spans}
    failed = by_name[_async_inner.__qualname__].error_traceback or ""
    logged = by_name["caller"].handled_errors[0].traceback
    assert (False, False, True, True) == (
        "_span.py" in failed,
        "_span.py" in logged,
        "in _async_inner" in failed,
        "in test_async_and_logged_errors_store_no_wrapper_frame" in logged,
    )
