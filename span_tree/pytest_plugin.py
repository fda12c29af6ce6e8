"""pytest plugin (entry point ``span_tree``): the ``capture_spans`` fixture."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from span_tree.testing import CapturedSpans
from span_tree.testing import capture_spans as _capture_spans


@pytest.fixture(name="capture_spans")
def capture_spans_fixture() -> Iterator[CapturedSpans]:
    """The spans that end during the test, as a live list of ``FinishedSpan``.

    INFO records logged inside spans become events, as they do outside tests: pytest's
    own log handlers make logging look configured, so the root logger would otherwise
    stay at WARNING and drop them before span_tree sees them.
    """
    root = logging.getLogger()
    level = root.level
    lowered = level > logging.INFO
    if lowered:
        root.setLevel(logging.INFO)
    try:
        with _capture_spans() as spans:
            yield spans
    finally:
        if lowered and root.level == logging.INFO:  # unless the test set its own level
            root.setLevel(level)
