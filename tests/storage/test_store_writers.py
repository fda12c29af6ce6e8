"""Many real writer processes on one store: nothing lost, duplicated or half-visible."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from span_tree.storage import compact, open_store, span_files

WRITER = """
import sys, span_tree
from span_tree.sinks.parquet import ParquetSink
store, traces, tag, spool = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
sink = ParquetSink(store, max_rows=int(sys.argv[5]), max_age=60, spool_dir=spool)
span_tree.configure(
    store=None, sinks=[sink], console=False, jsonl=False, namespace="multi", app=tag,
    batch_size=64, schedule_delay=0.01,
)
index = 0
while traces < 0 or index < traces:
    with span_tree.span("job", writer=tag, index=index):
        with span_tree.span("step"):
            pass
    index += 1
span_tree.shutdown(timeout=30)
stats = sink.stats()
assert stats["lost_spans"] == 0 and stats["spooled_spans"] == 0, stats
"""


def start_writer(
    tmp_path: Path, store: Path, tag: str, *, traces: int, max_rows: int
) -> subprocess.Popen[bytes]:
    """Start one writer process (``traces=-1``: write until killed)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(store), str(traces), tag,
         str(tmp_path / f"spool-{tag}"), str(max_rows)],
        env=env,
        stderr=subprocess.PIPE,
    )  # fmt: skip


def finish(process: subprocess.Popen[bytes]) -> None:
    """Wait for a writer and fail the test with its stderr if it failed."""
    try:
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert 0 == process.returncode, stderr.decode()


@pytest.mark.slow
def test_many_writers_with_concurrent_compaction(tmp_path: Path) -> None:
    """4 processes write while compaction runs: every span exactly once, no bad file."""
    store = tmp_path / "store"
    location = open_store(str(store))
    writers = [start_writer(tmp_path, store, f"w{n}", traces=400, max_rows=60) for n in range(4)]
    problems = []
    try:
        while any(w.poll() is None for w in writers):
            problems.extend(span_files(location).problems)
            compact(location, min_age=0, target_rows=500)
            time.sleep(0.05)
    finally:
        for writer in writers:
            finish(writer)
    assert [] == problems
    compact(location, min_age=0, target_rows=500)
    found = span_files(location)
    rows = duckdb.execute(
        "select app, count(*), count(distinct span_id)"
        " from read_parquet(?, hive_partitioning=true) group by app order by app",
        [found.urls],
    ).fetchall()
    assert [(f"w{n}", 800, 800) for n in range(4)] == rows
    assert [] == found.problems


@pytest.mark.slow
def test_readers_never_see_partial_files_even_after_kill(tmp_path: Path) -> None:
    """DuckDB globbing the store while writers write, and after one is SIGKILLed, never fails."""
    store = tmp_path / "store"
    killed = start_writer(tmp_path, store, "killed", traces=-1, max_rows=40)
    steady = start_writer(tmp_path, store, "steady", traces=600, max_rows=40)
    glob = f"{store}/spans/**/*.parquet"
    seen = 0
    try:
        while steady.poll() is None:
            if any(store.glob("spans/*/*/*.parquet")):  # DuckDB fails on an empty glob
                counts = duckdb.execute(
                    "select count(*) from read_parquet(?, hive_partitioning=true)", [glob]
                ).fetchall()
                assert counts[0][0] >= seen  # files only ever add rows
                seen = counts[0][0]
            time.sleep(0.02)
        killed.send_signal(signal.SIGKILL)
    finally:
        if killed.poll() is None:
            killed.kill()
        killed.communicate(timeout=30)  # reap it and close its pipe
    assert -signal.SIGKILL == killed.returncode
    finish(steady)
    found = span_files(open_store(str(store)))
    assert [] == found.problems
    total = duckdb.execute(
        "select count(*) from read_parquet(?, hive_partitioning=true)", [glob]
    ).fetchall()[0][0]
    assert total == sum(
        n for (n,) in duckdb.execute(
            "select count(*) from read_parquet(?) group by filename", [found.urls]
        ).fetchall()
    )  # fmt: skip
