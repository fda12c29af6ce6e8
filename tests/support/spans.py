"""Finished spans for storage and sink tests, and reading span files back."""

from __future__ import annotations

import glob
import logging
from pathlib import Path

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


def unit_spans(count: int) -> list[FinishedSpan]:
    """``count`` finished records of one-span traces named "unit"."""
    with capture_spans() as spans:
        for index in range(count):
            with span_tree.span("unit", index=index):
                pass
    return list(spans)


def stored_rows(store: str | Path) -> list[FinishedSpan]:
    """Every span row in the Parquet files of a local store, as the files hold them."""
    paths = glob.glob(f"{store}/spans/**/*.parquet", recursive=True)
    return read_back(sorted(paths))
