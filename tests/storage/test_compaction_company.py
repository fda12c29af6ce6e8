"""Compaction in company: concurrent compactors, writers and readers, and SIGKILL at any point."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from span_tree._record import FinishedSpan
from span_tree.storage import compact, list_span_files, open_store, write_spans
from span_tree.storage._compact import newest_versions
from span_tree.storage._layout import new_file_name

pytestmark = pytest.mark.slow

DAY = "2024-05-05"

# A child process writing `batches` batches of `size` spans (unique span ids) under
# fresh batch ids, each second batch also written again later under its id (a retry).
WRITER = """
import json, sys, time
sys.path.insert(0, {tests!r})
from support.spans import make_spans
from span_tree.storage import open_store, write_spans
from span_tree.storage._layout import new_batch_id
location = open_store({store!r})
template = make_spans(1)
written = []
for index in range({batches}):
    spans = [
        s._replace(date={day!r}, span_id=f"{prefix}{{index:05d}}{{n:02d}}{{k}}")
        for n in range({size}) for k, s in enumerate(template)
    ]
    batch = new_batch_id()
    write_spans(location, spans, batch_id=batch)
    written.append((batch, spans))
    if index % 2 and len(written) > 3:
        again, again_spans = written[-3]
        write_spans(location, again_spans, batch_id=again)  # a late retry
    time.sleep(0.01)
print(json.dumps(sum(len(spans) for _, spans in written)))
"""

COMPACTOR = """
import sys, time
from span_tree.storage import compact, open_store
location = open_store({store!r})
deadline = time.monotonic() + {seconds}
while time.monotonic() < deadline:
    compact(location, min_age=0, grace={grace}, target_rows={target_rows})
"""

READER = """
import duckdb, json, sys, time
from span_tree.storage import list_span_files, open_store
location = open_store({store!r})
deadline = time.monotonic() + {seconds}
reads = failures = doubled = 0
errors = []
while time.monotonic() < deadline:
    urls = list_span_files(location).urls
    if not urls:
        continue
    try:
        total, distinct = duckdb.execute(
            "select count(*), count(distinct span_id) from read_parquet(?)", [urls]
        ).fetchall()[0]
    except Exception as error:
        failures += 1
        errors.append(str(error)[:400])
        continue
    reads += 1
    doubled += total != distinct
print(json.dumps([reads, failures, doubled, errors[:3]]))
"""


def python(code: str) -> subprocess.Popen[str]:
    """Start ``code`` in a fresh interpreter (the span_tree of this checkout)."""
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )


def finish(process: subprocess.Popen[str]) -> str:
    """Wait for a child; its stdout (fail with its stderr if it failed)."""
    out, err = process.communicate(timeout=300)
    assert 0 == process.returncode, err
    return out


def counts(store: str) -> tuple[int, int]:
    """(rows, distinct span ids) of what readers read."""
    urls = list_span_files(open_store(store)).urls
    row = duckdb.execute(
        "select count(*), count(distinct span_id) from read_parquet(?)", [urls]
    ).fetchall()[0]
    assert row is not None
    return int(row[0]), int(row[1])


def test_two_compactors_two_writers_and_a_reader_exact_counts(tmp_path: Path) -> None:
    """Two writers (with late retries), two compactors and a reader: no row lost or doubled."""
    store = str(tmp_path / "store")
    tests = str(Path(__file__).parent.parent / "unit")
    writers = [
        python(WRITER.format(tests=tests, store=store, batches=60, size=5, day=DAY, prefix=p))
        for p in ("a", "b")
    ]
    options = {"store": store, "seconds": 12, "grace": 3.0, "target_rows": 120}
    compactors = [python(COMPACTOR.format(**options)) for _ in range(2)]
    reader = python(READER.format(store=store, seconds=12))
    written = sum(json.loads(finish(process)) for process in writers)
    for process in compactors:
        finish(process)
    reads, failures, doubled, errors = json.loads(finish(reader))
    assert (0, 0, []) == (failures, doubled, errors)
    assert reads > 0
    assert (written, written) == counts(store)
    # Alone now: two passes without grace leave exactly the files readers read.
    compact(open_store(store), min_age=0, grace=0, target_rows=120)
    compact(open_store(store), min_age=0, grace=0, target_rows=120)
    assert (written, written) == counts(store)
    on_disk = list(Path(store).rglob("*.parquet"))
    assert len(on_disk) == len(list_span_files(open_store(store)).files)


CRASHING_COMPACTOR = """
import os, signal
import span_tree.storage._compact as compact_module
import span_tree._atomic as atomic
from span_tree.storage import compact, open_store
point, nth = {point!r}, {nth}
calls = [0]

def crash_on(target, name):
    real = getattr(target, name)

    def wrapper(*args, **kwargs):
        calls[0] += 1
        mine = calls[0]
        if point == "before-rename" and mine == nth:
            os.kill(os.getpid(), signal.SIGKILL)
        result = real(*args, **kwargs)
        if point != "before-rename" and mine == nth:
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    setattr(target, name, wrapper)

if point == "before-rename":
    crash_on(atomic.os, "replace")        # the merged file is written, not yet visible
elif point == "after-publish":
    crash_on(compact_module, "write_table_atomic")   # visible, nothing else done
else:
    crash_on(compact_module, "_delete")   # in the middle of deleting replaced files
compact(open_store({store!r}), min_age=0, grace={grace}, target_rows=8)
"""


@pytest.mark.parametrize(
    ("point", "nth"),
    [("before-rename", 1), ("after-publish", 1), ("after-publish", 2), ("delete", 1),
     ("delete", 3)],
)  # fmt: skip
def test_sigkill_inside_compaction_loses_and_doubles_nothing(
    tmp_path: Path, point: str, nth: int
) -> None:
    """A compactor killed mid-write, right after publishing or mid-delete: counts stay exact."""
    store = str(tmp_path / "store")
    location = open_store(store)
    for index in range(10):
        spans = [
            s._replace(date=DAY, span_id=f"{index:04d}{n}{s.span_id[:8]}")
            for n in range(2)
            for s in make_spans_once()
        ]
        write_spans(location, spans)
    expected = counts(store)
    if point == "delete":  # deletions happen in a pass after the grace period
        compact(location, min_age=0, grace=0, target_rows=8)
        compact(location, min_age=0, grace=0, target_rows=1000)
    child = python(CRASHING_COMPACTOR.format(point=point, nth=nth, store=store, grace=0))
    child.communicate(timeout=120)
    assert -signal.SIGKILL == child.returncode
    assert expected == counts(store)
    for _ in range(3):  # the next compactions finish the job
        compact(location, min_age=0, grace=0, target_rows=1000)
        assert expected == counts(store)
    assert 1 == len(list(Path(store).rglob("*.parquet")))


_TEMPLATE: list[FinishedSpan] = []


def make_spans_once() -> list[FinishedSpan]:
    """Two span records (root and child), recorded once per test session."""
    if not _TEMPLATE:
        import span_tree
        from span_tree.testing import capture_spans

        with capture_spans() as spans, span_tree.span("root"), span_tree.span("child"):
            pass
        _TEMPLATE.extend(spans)
    return list(_TEMPLATE)


def test_old_store_with_duplicates_reads_once_and_compacts_to_one_copy(tmp_path: Path) -> None:
    """Legacy files holding the same rows twice: flagged, read once, compacted to one copy."""
    from span_tree.analytics import Store

    store = str(tmp_path / "store")
    location = open_store(store)
    spans = [s._replace(date=DAY) for s in make_spans_once()]
    started = spans[0]._replace(status="started", end_time=None, duration_us=None)
    first = write_spans(location, [started, *spans])[0]
    directory = Path(first).parent
    for _ in range(2):  # an old receiver writing one retried request twice
        (directory / new_file_name()).write_bytes(Path(first).read_bytes())
    Path(first).unlink()
    found = list_span_files(location)
    assert [True, True] == found.legacy
    with Store(store) as opened:
        assert [(len(spans),)] == opened.sql("select count(*) from spans").fetchall()
    result = compact(location, min_age=0, grace=0)
    assert (2, 1, len(spans), len(spans) + 4) == (
        result.files_in,
        result.files_out,
        result.rows,
        result.rows + result.rows_dropped,
    )
    merged = list_span_files(location)
    assert [True] == merged.legacy  # its inputs were legacy
    rows = pq.read_table(merged.files[0]).to_pylist()
    assert sorted(s.span_id for s in spans) == sorted(row["span_id"] for row in rows)
    assert "started" not in {row["status"] for row in rows}


def test_newest_versions_keeps_the_finished_then_newest_row() -> None:
    """A started row of a finished span goes; of two finished rows the newer stays."""
    import pyarrow as pa

    from span_tree.storage.schema import SPAN_SCHEMA, records_to_table

    spans = [s._replace(date=DAY) for s in make_spans_once()]
    started = spans[0]._replace(status="started", end_time=None, duration_us=None)
    table = pa.concat_tables(
        [
            records_to_table([started], written_at=30),
            records_to_table(spans, written_at=10),
            records_to_table([spans[0]], written_at=20),
        ]
    ).cast(SPAN_SCHEMA)
    kept = newest_versions(table).to_pylist()
    by_id = {row["span_id"]: (row["status"], row["written_at"]) for row in kept}
    status, written = by_id[spans[0].span_id]
    assert (2, spans[0].status, 20) == (len(kept), status, round(written.timestamp() * 1e6))
