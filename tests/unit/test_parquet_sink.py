"""ParquetSink: buffering, flush by size/age/force, stats."""

from __future__ import annotations

import time
from pathlib import Path

from test_storage import make_spans, read_back

import span_tree
from span_tree.sinks.parquet import ParquetSink
from span_tree.storage import open_store, span_files
from span_tree.typing import Sink


def test_sink_implements_protocol(tmp_path: Path) -> None:
    """ParquetSink satisfies the Sink protocol."""
    sink = ParquetSink(str(tmp_path), spool_dir=str(tmp_path / "spool"))
    try:
        assert isinstance(sink, Sink)
    finally:
        sink.shutdown()


def test_force_flush_writes_buffer(tmp_path: Path) -> None:
    """Exported spans stay buffered until force_flush writes them as one file."""
    sink = ParquetSink(str(tmp_path / "s"), spool_dir=str(tmp_path / "spool"), max_age=60)
    spans = make_spans(3)
    sink.export(spans)
    location = open_store(str(tmp_path / "s"))
    assert [] == span_files(location).files
    assert sink.force_flush(5.0)
    files = span_files(location).files
    assert 1 == len(files)
    assert len(spans) == len(read_back(files))
    assert len(spans) == sink.stats()["written_spans"]
    sink.shutdown()


def test_flush_by_rows(tmp_path: Path) -> None:
    """Reaching max_rows writes a file without an explicit flush."""
    sink = ParquetSink(str(tmp_path), spool_dir=str(tmp_path / "spool"), max_rows=4, max_age=60)
    sink.export(make_spans(2))
    assert 1 == len(span_files(open_store(str(tmp_path))).files)
    sink.shutdown()


def test_flush_by_age(tmp_path: Path) -> None:
    """A buffered span is written once it is older than max_age, with no further export."""
    sink = ParquetSink(str(tmp_path), spool_dir=str(tmp_path / "spool"), max_age=0.1)
    sink.export(make_spans(1))
    location = open_store(str(tmp_path))
    deadline = time.monotonic() + 10
    while not span_files(location).files and time.monotonic() < deadline:
        time.sleep(0.02)
    assert 1 == len(span_files(location).files)
    sink.shutdown()


def test_configure_store_routes_spans(tmp_path: Path) -> None:
    """configure(store=...) writes spans there; span_tree.stats() shows the sink's counters."""
    span_tree.configure(store=str(tmp_path), console=False, jsonl=False)
    with span_tree.span("configured"):
        pass
    assert span_tree.flush(10)
    files = span_files(open_store(str(tmp_path))).files
    assert ["configured"] == [r.name for r in read_back(files)]
    sinks = span_tree.stats()["sinks"]
    assert 1 == next(s for s in sinks if s["name"] == "ParquetSink")["written_spans"]
