"""Automatic compaction: a service's Parquet sink and the receiver merge closed partitions."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq

import span_tree
from span_tree._record import FinishedSpan
from span_tree.sinks.parquet import ParquetSink
from span_tree.storage import list_span_files, open_store, write_spans
from span_tree.storage._layout import COMPACTED, file_kind
from span_tree.testing import capture_spans

# Yesterday: closed, and within the days a background pass looks at.
PAST = (datetime.now(UTC).date() - timedelta(days=1)).isoformat()


def past_spans(count: int) -> list[FinishedSpan]:
    """``count`` root spans dated in a closed partition."""
    with capture_spans() as spans:
        for index in range(count):
            with span_tree.span("unit", index=index):
                pass
    return [span._replace(date=PAST) for span in spans]


def wait_for_one_compacted_file(
    store: str, timeout: float = 30.0, tick: Callable[[], None] = lambda: None
) -> list[str]:
    """Poll the listing until readers read one compacted file; return the files.

    ``tick`` runs between polls (a sink's, as the processor's worker calls it).
    """
    deadline = time.monotonic() + timeout
    files = list_span_files(open_store(store)).files
    while time.monotonic() < deadline:
        files = list_span_files(open_store(store)).files
        if len(files) == 1 and file_kind(Path(files[0]).name) == COMPACTED:
            break
        time.sleep(0.1)
        tick()
    return files


def test_parquet_sink_compacts_its_closed_partitions_in_the_background(tmp_path: Path) -> None:
    """A long-running sink, ticked as the processor does, merges its small files once old enough."""
    store = str(tmp_path / "store")
    sink = ParquetSink(
        store, spool_dir=str(tmp_path / "spool"), compact_interval=0.3, compact_min_age=0
    )
    spans = past_spans(9)
    for start in range(0, 9, 3):
        sink.export(spans[start : start + 3])
        assert sink.force_flush(5.0)
    files = wait_for_one_compacted_file(store, tick=sink.tick)
    sink.shutdown()
    assert (1, len(spans)) == (len(files), pq.read_metadata(files[0]).num_rows)


def test_receiver_compacts_the_store_in_the_background(tmp_path: Path) -> None:
    """The receiver's low-priority thread merges closed partitions with no operator."""
    from span_tree.receiver import create_app

    store = str(tmp_path / "store")
    location = open_store(store)
    spans = past_spans(8)
    for start in range(0, 8, 2):
        write_spans(location, spans[start : start + 2])
    app = create_app(store, compact_interval=0.3, compact_min_age=0)
    try:
        files = wait_for_one_compacted_file(store)
    finally:
        app.state.receiver.compactor.stop()
    assert (1, len(spans)) == (len(files), pq.read_metadata(files[0]).num_rows)


SINK_COMPACTS_TEN_FILES = """
import sys, time
from datetime import UTC, datetime, timedelta
import span_tree
from span_tree.sinks.parquet import ParquetSink
from span_tree.storage import list_span_files, open_store
from span_tree.testing import capture_spans

store, spool = sys.argv[1], sys.argv[2]
past = (datetime.now(UTC).date() - timedelta(days=1)).isoformat()
span_tree.configure(console=False, jsonl=False, store=None)
with capture_spans() as spans:
    for index in range(10):
        with span_tree.span("unit", index=index):
            pass
sink = ParquetSink(store, spool_dir=spool, compact_interval=0.3, compact_min_age=0)
for span in spans:
    sink.export([span._replace(date=past)])
    sink.force_flush(5.0)
deadline = time.monotonic() + 30
while len(list_span_files(open_store(store)).files) > 1 and time.monotonic() < deadline:
    sink.tick()
    time.sleep(0.1)
sink.shutdown()
print(len(list_span_files(open_store(store)).files), "duckdb" in sys.modules)
"""


def test_a_services_sink_compacts_without_loading_duckdb(tmp_path: Path) -> None:
    """The sink's background compaction (in the traced app's process) merges ten small
    files without importing DuckDB; the receiver and `spantree compact` may."""
    import subprocess
    import sys

    from support.processes import TIMEOUT, clean_env

    arguments = [str(tmp_path / "store"), str(tmp_path / "spool")]
    done = subprocess.run(
        [sys.executable, "-c", SINK_COMPACTS_TEN_FILES, *arguments],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=clean_env(),
        check=True,
    )
    assert "1 False" == done.stdout.strip()
