"""pytest plugin (entry point ``span_tree``): the ``capture_spans`` fixture."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from span_tree.testing import CapturedSpans
from span_tree.testing import capture_spans as _capture_spans


@pytest.fixture(name="capture_spans")
def capture_spans_fixture() -> Iterator[CapturedSpans]:
    """The spans that end during the test, as a live list of ``FinishedSpan``.

    The same as ``with span_tree.testing.capture_spans() as spans:`` around the test
    (INFO records inside spans become events, as outside tests).
    """
    with _capture_spans() as spans:
        yield spans
