"""Reading a store at scale: listing by range, bad files found lazily, the newest-version
rule over batch and legacy files, running spans remembered per partition."""

from __future__ import annotations

import json
import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from support.analytics_store import build_store, make_span

from span_tree._ids import trace_id_from_w3c, w3c_trace_id
from span_tree._record import FinishedSpan, newest_versions
from span_tree.analytics import Store, _running
from span_tree.analytics._verdicts import CACHE_NAME
from span_tree.storage import open_store, write_spans
from span_tree.storage._layout import new_file_name
from span_tree.storage._writer import prepare_files

DAY_US = 86_400_000_000
BASE = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture(autouse=True)
def cache_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cache directory of this test's own (bad-file verdicts, running spans)."""
    directory = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("SPANTREE_CACHE_DIR", str(directory))
    return directory


def _us(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000)


def _trace(index: int, day: int) -> str:
    return trace_id_from_w3c(f"{index:032x}", (_us(BASE) + day * DAY_US) / 1e6 + index)


def _spans(day: int, count: int = 3) -> list[FinishedSpan]:
    """``count`` one-span traces started on day ``day`` after BASE."""
    start = _us(BASE) + day * DAY_US + 3_600_000_000
    return [
        make_span(_trace(day * 100 + i, day), f"job{i}", start_us=start + i, duration_us=10)
        for i in range(count)
    ]


def _write_legacy(location: Any, records: list[FinishedSpan]) -> None:
    """Write ``records`` as a file of before batch identities (a bare KSUID name)."""
    for prepared in prepare_files(records, batch_id=None):
        path = Path(location.spans_root) / prepared.relative_path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(prepared.data)


def _corrupt_page_header(path: Path, column: str, *, offset: int, patch: bytes) -> None:
    """Overwrite bytes of ``column``'s first page header; the footer stays intact."""
    metadata = pq.read_metadata(path)
    group = metadata.row_group(0)
    for index in range(group.num_columns):
        chunk = group.column(index)
        if chunk.path_in_schema == column:
            start = (chunk.dictionary_page_offset or chunk.data_page_offset) + offset
            data = bytearray(path.read_bytes())
            data[start : start + len(patch)] = patch
            path.write_bytes(bytes(data))
            return
    raise AssertionError(f"no column {column}")


# -- the newest-version rule ------------------------------------------------------------


def test_started_then_finished_in_another_batch_is_one_row(tmp_path: Path) -> None:
    """A started snapshot and the finished version (two batch files) give one row."""
    location = open_store(str(tmp_path))
    finished = _spans(0, 1)[0]
    started = finished._replace(status="started", end_time=None, duration_us=None)
    write_spans(location, [started])
    write_spans(location, [finished])
    store = Store(str(tmp_path))
    rows = store.sql("select span_id, status, duration_us from spans").fetchall()
    assert [(finished.span_id, "succeeded", 10)] == rows
    assert [(0,)] == store.sql("select count(*) from running_spans").fetchall()


def test_only_started_is_running_with_its_newest_snapshot(tmp_path: Path) -> None:
    """Two snapshots and no finished version: spans and running_spans hold the newest."""
    location = open_store(str(tmp_path))
    span = _spans(0, 1)[0]
    first = span._replace(status="started", end_time=None, duration_us=None, name="old")
    write_spans(location, [first])
    write_spans(location, [first._replace(name="new")])
    store = Store(str(tmp_path))
    assert [("new", "started")] == store.sql("select name, status from spans").fetchall()
    assert [("new",)] == store.sql("select name from running_spans").fetchall()


def test_python_helper_agrees_with_the_view(tmp_path: Path) -> None:
    """newest_versions keeps per span the row the spans view keeps."""
    location = open_store(str(tmp_path))
    done, running = _spans(0, 2)
    versions = [
        done._replace(status="started", end_time=None, duration_us=None),
        done,
        running._replace(status="started", end_time=None, duration_us=None, name="a"),
        running._replace(status="started", end_time=None, duration_us=None, name="b"),
    ]
    for record in versions:
        write_spans(location, [record])
    store = Store(str(tmp_path))
    from_sql = set(store.sql("select span_id, name, status from spans").fetchall())
    stored = [
        *store.trace(done.trace_id),
        *store.trace(running.trace_id),
    ]
    kept = {(s.span_id, s.name, s.status) for s in stored}
    assert from_sql == kept
    assert {(done.span_id, done.name, "succeeded"), (running.span_id, "b", "started")} == kept
    written = [r._replace(written_at=i) for i, r in enumerate(versions)]
    assert kept == {(s.span_id, s.name, s.status) for s in newest_versions(reversed(written))}


def test_old_store_with_duplicates_reads_each_span_once(tmp_path: Path) -> None:
    """Legacy files (a batch delivered twice, started + finished) give one row per span;
    batch files of other partitions read as they are."""
    location = open_store(str(tmp_path))
    old = _spans(0)
    started = old[0]._replace(status="started", end_time=None, duration_us=None)
    _write_legacy(location, [started, *old])
    _write_legacy(location, old)  # the same batch again: a retry before batch identities
    write_spans(location, _spans(1))
    store = Store(str(tmp_path))
    by_date = store.sql(
        "select date, count(*), count(distinct span_id) from spans group by date order by date"
    ).fetchall()
    assert [("2026-03-01", 3, 3), ("2026-03-02", 3, 3)] == by_date
    assert [(0,)] == store.sql("select count(*) from spans where status = 'started'").fetchall()
    assert [(10,)] == store.sql("select count(*) from span_versions").fetchall()
    assert 2 == len(store.trace(old[0].trace_id)) + len(store.trace(old[1].trace_id))


# -- listing by range --------------------------------------------------------------------


@pytest.fixture
def listed_first_dates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """A store of ten days (one span a day) in tmp_path; the list fills with the
    ``first_date`` of each listing of it."""
    import span_tree.storage

    location = open_store(str(tmp_path))
    for day in range(10):
        write_spans(location, _spans(day, 1))
    asked: list[Any] = []
    real = span_tree.storage.list_span_files

    def spy(location: Any, **options: Any) -> Any:
        asked.append(options.get("first_date"))
        return real(location, **options)

    monkeypatch.setattr(span_tree.storage, "list_span_files", spy)
    return asked


def test_since_lists_only_the_partitions_it_needs(
    tmp_path: Path, listed_first_dates: list[Any]
) -> None:
    """traces(since=...) lists the days from since's day on; SQL over all lists all."""
    asked = listed_first_dates
    store = Store(str(tmp_path))
    since = BASE + timedelta(days=8)
    assert 2 == store.traces(since=since).height
    assert ["2026-03-09"] == asked
    listed = sorted({date for _, date in store._listing.partitions.values()})  # type: ignore[union-attr]
    assert ["2026-03-09", "2026-03-10"] == listed
    assert [(10,)] == store.sql("select count(*) from spans").fetchall()
    assert ["2026-03-09", None] == asked


def test_trace_of_a_known_day_lists_from_that_day(
    tmp_path: Path, listed_first_dates: list[Any]
) -> None:
    """Store.trace(KSUID) lists from the day before its id's day, not the whole store."""
    asked = listed_first_dates
    wanted = _spans(7, 1)[0]
    assert [wanted.span_id] == [s.span_id for s in Store(str(tmp_path)).trace(wanted.trace_id)]
    assert ["2026-03-07"] == asked


def test_a_trace_over_several_days_keeps_every_span(tmp_path: Path) -> None:
    """Spans starting two days after the trace's id are found (the root reaches them)."""
    location = open_store(str(tmp_path))
    trace = _trace(1, 0)
    start = _us(BASE) + 3_600_000_000
    root = make_span(trace, "long", start_us=start, duration_us=4 * DAY_US)
    late = make_span(trace, "late", start_us=start + 3 * DAY_US, duration_us=5, parent=root.span_id)
    write_spans(location, [root, late])
    spans = Store(str(tmp_path)).trace(trace)
    assert ["long", "late"] == [span.name for span in spans]


def test_foreign_trace_id_is_searched_over_every_day(tmp_path: Path) -> None:
    """A foreign id (timestamp 0) and its 32-hex form find spans of any day."""
    location = open_store(str(tmp_path))
    foreign = trace_id_from_w3c("ab" * 16)
    records = [r._replace(trace_id=foreign) for r in _spans(5, 2)]
    write_spans(location, [*_spans(1), *records, *_spans(9)])
    store = Store(str(tmp_path))
    assert 2 == len(store.trace(foreign))
    assert 2 == len(store.trace(w3c_trace_id(foreign)))


# -- bad files, found when read ---------------------------------------------------------


def test_corrupt_pages_unnamed_errors_are_found_and_remembered(
    tmp_path: Path, cache_dir: Path
) -> None:
    """Files with intact footers but damaged page headers (DuckDB names no file) are
    found by bisecting, skipped and remembered; the query is answered from the rest."""
    location = open_store(str(tmp_path))
    for day in range(4):
        write_spans(location, _spans(day))
    files = sorted((tmp_path / "spans").rglob("*.parquet"))
    _corrupt_page_header(files[1], "name", offset=0, patch=b"\xff" * 6)  # "don't know what type"
    _corrupt_page_header(files[2], "span_id", offset=3, patch=b"\x00" * 4)  # thrift: invalid data
    reported: list[list[str]] = []
    store = Store(str(tmp_path), on_problem=reported.append)
    assert [(6,)] == store.sql("select count(distinct name || span_id) from spans").fetchall()
    skipped = sorted(line.split(": ", 1)[0] for line in store.problems)
    assert sorted(str(path) for path in files[1:3]) == skipped
    assert 2 == sum(len(batch) for batch in reported)
    saved = json.loads((cache_dir / CACHE_NAME).read_text())[str(tmp_path)]
    assert sorted(str(path) for path in files[1:3]) == sorted(saved)
    # A later process skips them from the listing, without reading them again.
    again: list[list[str]] = []
    later = Store(str(tmp_path), on_problem=again.append)
    assert 2 == len(later.files)
    assert [2] == [len(batch) for batch in again]


def test_named_corrupt_file_is_skipped_and_reported_once(tmp_path: Path) -> None:
    """A file DuckDB names (damaged compressed data) is left out and reported once."""
    location = open_store(str(tmp_path))
    for day in range(3):
        write_spans(location, _spans(day, 200))
    bad = sorted((tmp_path / "spans").rglob("*.parquet"))[0]
    data = bytearray(bad.read_bytes())
    for index in range(len(data) // 4, len(data) // 2, 7):
        data[index] = (index * 31) % 256
    bad.write_bytes(bytes(data))
    reported: list[list[str]] = []
    store = Store(str(tmp_path), on_problem=reported.append)
    rows = store.sql("select count(*), max(attributes), max(error_traceback) from spans")
    assert 400 == rows.fetchall()[0][0]
    assert 400 == store.sql("select count(*) from spans").fetchall()[0][0]
    assert [1] == [len(batch) for batch in reported]
    assert reported[0][0].startswith(f"{bad}: ")


def test_a_rewritten_file_is_judged_again(tmp_path: Path) -> None:
    """A verdict holds for one version of a file: replaced by a good file, it is read."""
    location = open_store(str(tmp_path))
    write_spans(location, _spans(0))
    write_spans(location, _spans(1))
    bad = sorted((tmp_path / "spans").rglob("*.parquet"))[0]
    good = bad.read_bytes()
    bad.write_bytes(b"PAR1 not really parquet at all PAR1")
    store = Store(str(tmp_path))
    assert [(3,)] == store.sql("select count(*) from spans").fetchall()
    bad.write_bytes(good)
    os.utime(bad, (1, 1))  # a different mtime too
    assert [(6,)] == Store(str(tmp_path)).sql("select count(*) from spans").fetchall()


def test_an_older_schema_file_is_read_by_name(tmp_path: Path) -> None:
    """A file of the first schema (fewer columns) is read, its missing columns empty."""
    write_spans(open_store(str(tmp_path)), _spans(0))
    partition = next((tmp_path / "spans").glob("namespace=shop/date=*"))
    old = Path(__file__).parent.parent / "data" / "spans_schema_v0.parquet"
    shutil.copy(old, partition / f"{new_file_name()}")
    store = Store(str(tmp_path))
    count = store.sql("select count(*), count(tags) from span_versions").fetchall()[0]
    expected = pq.read_metadata(old).num_rows + 3
    assert (expected, 3) == count
    assert [] == store.problems


# -- running spans remembered -----------------------------------------------------------


def test_running_spans_are_computed_once_per_partition_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second Store over unchanged files does not evaluate running_spans again; a new
    file makes only its partition evaluated again."""
    location = open_store(str(tmp_path))
    write_spans(location, _spans(0))
    write_spans(location, _spans(1))
    evaluated: list[list[tuple[str, str]]] = []
    real = _running.compute

    def spy(con: Any, partitions: Any) -> Any:
        evaluated.append(sorted(partitions))
        return real(con, partitions)

    monkeypatch.setattr(_running, "compute", spy)
    assert [(6,)] == Store(str(tmp_path)).sql("select count(*) from spans").fetchall()
    assert [(6,)] == Store(str(tmp_path)).sql("select count(*) from spans").fetchall()
    write_spans(location, _spans(1, 1)[:1])
    Store(str(tmp_path)).sql("select count(*) from spans").fetchall()
    day0, day1 = ("shop", "2026-03-01"), ("shop", "2026-03-02")
    assert [[day0, day1], [day1]] == evaluated


def test_files_without_started_rows_are_read_as_settled(tmp_path: Path) -> None:
    """Files known to hold no started row are read with no status filter (settled); the
    file holding a snapshot stays filtered, and spans keeps one version per span, also
    in a second Store answering from the remembered files."""
    location = open_store(str(tmp_path))
    write_spans(location, _spans(0))
    late = make_span(_trace(50, 0), "late", start_us=_us(BASE) + 3_600_000_000, duration_us=10)
    write_spans(location, [late._replace(status="started", end_time=None, duration_us=None)])
    write_spans(location, [late])
    for store in (Store(str(tmp_path)), Store(str(tmp_path))):
        spans = store.sql("select name, status from spans order by name").fetchall()
        settled = store.sql("select count(*) from settled_span_versions").fetchall()
        unsettled = store.sql("select status from unsettled_span_versions").fetchall()
        expected = [(f"job{i}", "succeeded") for i in range(3)] + [("late", "succeeded")]
        assert (expected, [(4,)], [("started",)]) == (spans, settled, unsettled)


def test_a_remembered_entry_without_started_files_is_evaluated_again(tmp_path: Path) -> None:
    """A running-spans cache entry of before settled files (no "started" list) is not
    trusted: the partition is evaluated again and its files' state remembered."""
    location = open_store(str(tmp_path))
    write_spans(location, _spans(0))
    Store(str(tmp_path)).sql("select count(*) from spans").fetchall()
    cache = _running.RunningCache(Store(str(tmp_path)).url)
    with open(cache.path, encoding="utf-8") as handle:
        entries = json.load(handle)
    for entry in entries.values():
        del entry["started"]
    with open(cache.path, "w", encoding="utf-8") as handle:
        json.dump(entries, handle)
    store = Store(str(tmp_path))
    assert [(3,)] == store.sql("select count(*) from spans").fetchall()
    assert [(3,)] == store.sql("select count(*) from settled_span_versions").fetchall()
    with open(cache.path, encoding="utf-8") as handle:
        assert [[]] == [entry["started"] for entry in json.load(handle).values()]


def test_running_spans_stay_remembered_when_a_later_query_adds_views(tmp_path: Path) -> None:
    """A second query that needs more views does not put back the live running_spans
    (a scan of every snapshot partition per query): it reads the remembered keys."""
    location = open_store(str(tmp_path))
    span = _spans(0, 1)[0]
    write_spans(location, [span._replace(status="started", end_time=None, duration_us=None)])
    write_spans(location, _spans(1))
    store = Store(str(tmp_path))
    assert [(4,)] == store.sql("select count(*) from spans").fetchall()
    assert [(4,)] == store.sql("select sum(count)::int from span_stats").fetchall()
    definition = store.sql(
        "select sql from duckdb_views() where view_name = 'running_spans'"
    ).fetchall()[0][0]
    assert "running_span_keys" in definition
    assert [(span.span_id,)] == store.sql("select span_id from running_spans").fetchall()


def test_bounded_memory_settings(tmp_path: Path, cache_dir: Path) -> None:
    """DuckDB gets a memory limit and spills under the cache directory."""
    store = Store(build_store(tmp_path), memory_limit="300MB")
    limit, temp = store.sql(
        "select current_setting('memory_limit'), current_setting('temp_directory')"
    ).fetchall()[0]
    assert ("286.1 MiB", str(cache_dir / "duckdb-tmp")) == (limit, temp)


# A result DuckDB cannot spill: one list of every value, held whole in memory.
_UNSPILLABLE = "select len(list(range)) from range(4000000)"


def test_default_memory_bound_is_raised_once_for_a_query_that_needs_more(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under the default bound a query that cannot be answered within it runs once more
    with half the machine's memory, instead of failing; the bound is DuckDB's limit."""
    from span_tree.analytics import _source

    monkeypatch.delenv("SPANTREE_MEMORY_LIMIT", raising=False)
    monkeypatch.setattr(_source, "BOUNDED_MEMORY_MB", 16)
    monkeypatch.setattr(_source, "BOUND_SHARE", 0.0)
    store = Store(build_store(tmp_path))
    assert [("16.0 MiB",)] == store.sql("select current_setting('memory_limit')").fetchall()
    assert [(4000000,)] == store.sql(_UNSPILLABLE).fetchall()
    raised = store.sql("select current_setting('memory_limit')").fetchall()[0][0]
    assert "16.0 MiB" != raised


def test_default_memory_bound_is_a_quarter_of_the_machine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no limit chosen, DuckDB may use a quarter of the machine's memory (at least
    1 GiB) before it spills: enough for span_stats over 100M spans without spilling."""
    import os

    import duckdb

    monkeypatch.delenv("SPANTREE_MEMORY_LIMIT", raising=False)
    machine_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    expected = min(max(256, machine_mb // 2), max(1024, machine_mb // 4))
    con = duckdb.connect()
    con.execute(f"SET memory_limit = '{expected}MiB'")
    setting = "select current_setting('memory_limit')"
    store = Store(build_store(tmp_path))
    assert con.sql(setting).fetchall() == store.sql(setting).fetchall()


def test_a_chosen_memory_limit_is_kept(tmp_path: Path) -> None:
    """A memory limit the caller chose is not raised: the query fails with one error."""
    from span_tree.analytics import QueryError

    store = Store(build_store(tmp_path), memory_limit="16MB")
    with pytest.raises(QueryError, match="Out of Memory"):
        store.rows(_UNSPILLABLE)


def test_a_lazy_relation_survives_a_compaction_under_it(tmp_path: Path) -> None:
    """A relation from Store.sql() fetched after compaction replaced its files re-lists
    and answers, instead of failing with "No files found"."""
    from span_tree.storage import compact

    location = open_store(str(tmp_path))
    write_spans(location, _spans(0))
    write_spans(location, _spans(0, 5)[3:])
    store = Store(str(tmp_path))
    relation = store.sql("select count(*) from spans")
    compact(location, min_age=0, grace=0)
    compact(location, min_age=0, grace=0)  # the later pass deletes the inputs
    assert 1 == len(list((tmp_path / "spans").rglob("*.parquet")))
    assert [(5,)] == relation.fetchall()
