"""Finished spans for storage and sink tests, and reading span files back."""

from __future__ import annotations

import logging

import pyarrow.parquet as pq

import span_tree
from span_tree._record import FinishedSpan
from span_tree.storage.schema import table_to_records
from span_tree.testing import capture_spans


def make_spans(count: int = 3, *, namespace: str = "default") -> list[FinishedSpan]:
    """Record ``count`` small traces (root + child with an event) and return them."""
    with capture_spans() as spans:
        for index in range(count):
            with span_tree.span("root", index=index), span_tree.span("child"):
                logging.getLogger("test").warning("step %s", index)
    return [span._replace(namespace=namespace) for span in spans]


def read_back(paths: list[str]) -> list[FinishedSpan]:
    """Read span files back into records."""
    return [record for path in paths for record in table_to_records(pq.read_table(path))]
