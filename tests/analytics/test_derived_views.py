"""Derived views (``error_spans``) computed once per partition's files and remembered in
the cache directory: the error views read the remembered rows, and stay exact when files
are added, the cache is cleaned, or another Store replaced the rows."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from support.analytics_store import make_span

from span_tree._ids import trace_id_from_w3c
from span_tree._record import FinishedSpan, HandledError
from span_tree.analytics import Store, _derived
from span_tree.storage import open_store, write_spans
from span_tree.storage._prune import prune

DAY_US = 86_400_000_000
START_US = int(datetime(2026, 3, 1, tzinfo=UTC).timestamp() * 1_000_000) + 3_600_000_000
GROUPS = "select error_type, count::int from error_groups order by error_type"


@pytest.fixture(autouse=True)
def cache_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cache directory of this test's own."""
    directory = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("SPANTREE_CACHE_DIR", str(directory))
    return directory


def _failing(day: int, number: int, error_type: str = "ValueError") -> FinishedSpan:
    """A one-span trace on day ``day`` that failed with ``error_type``."""
    start = START_US + day * DAY_US + number
    trace = trace_id_from_w3c(f"{day * 1000 + number:032x}", start // 1_000_000)
    return make_span(
        trace,
        "job",
        start_us=start,
        duration_us=10,
        status="failed",
        error=(error_type, f"bad {number}", ""),
    )


def _spied(monkeypatch: pytest.MonkeyPatch) -> list[list[tuple[str, str]]]:
    """The partitions each DerivedCache.compute call of error_spans evaluates."""
    evaluated: list[list[tuple[str, str]]] = []
    real = _derived.DerivedCache.compute

    def spy(self: Any, con: Any, digests: Any) -> Any:
        if self.view == "error_spans":
            evaluated.append(sorted(digests))
        return real(self, con, digests)

    monkeypatch.setattr(_derived.DerivedCache, "compute", spy)
    return evaluated


def test_error_rows_are_computed_once_per_partition_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second Store over unchanged files evaluates no partition again; a new file makes
    only its partition evaluated again, and its error is counted."""
    location = open_store(str(tmp_path))
    write_spans(location, [_failing(0, 1), _failing(0, 2)])
    write_spans(location, [_failing(1, 3, "KeyError")])
    evaluated = _spied(monkeypatch)
    first = Store(str(tmp_path)).sql(GROUPS).fetchall()
    second = Store(str(tmp_path)).sql(GROUPS).fetchall()
    write_spans(location, [_failing(1, 4, "KeyError")])
    third = Store(str(tmp_path)).sql(GROUPS).fetchall()
    day0, day1 = ("shop", "2026-03-01"), ("shop", "2026-03-02")
    assert (
        [("KeyError", 1), ("ValueError", 2)],
        [("KeyError", 1), ("ValueError", 2)],
        [("KeyError", 2), ("ValueError", 2)],
        [[day0, day1], [day1]],
    ) == (first, second, third, evaluated)


def test_a_partition_without_errors_is_remembered_as_empty(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store without errors has empty error views, evaluated once, with the columns of
    the live view, read from an empty file of the cache (no look at the store's files)."""
    location = open_store(str(tmp_path))
    write_spans(
        location,
        [make_span(trace_id_from_w3c("1" * 32, 1), "ok", start_us=START_US, duration_us=5)],
    )
    evaluated = _spied(monkeypatch)
    first = Store(str(tmp_path))
    assert [] == first.sql(GROUPS).fetchall()
    second = Store(str(tmp_path))
    assert [] == second.sql("select * from error_occurrences").fetchall()
    columns = [row[0] for row in second.sql("describe error_spans").fetchall()]
    definition = second.sql(
        "select sql from duckdb_views() where view_name = 'error_spans'"
    ).fetchall()[0][0]
    assert (1, "handled_errors", True, False) == (
        len(evaluated),
        columns[-1],
        "empty.parquet" in definition,
        str(tmp_path) in definition,
    )


def test_a_cleaned_cache_is_computed_again(tmp_path: Path, cache_dir: Path) -> None:
    """Removing the remembered rows (a cleaned cache directory) loses no error, for a
    new Store and for one that had pointed its views at them."""
    location = open_store(str(tmp_path))
    write_spans(location, [_failing(0, 1), _failing(0, 2)])
    store = Store(str(tmp_path))
    assert [("ValueError", 2)] == store.sql(GROUPS).fetchall()
    shutil.rmtree(cache_dir / "derived")
    assert [("ValueError", 2)] == Store(str(tmp_path)).sql(GROUPS).fetchall()
    shutil.rmtree(cache_dir / "derived")
    assert [("ValueError", 2)] == store.sql(GROUPS).fetchall()


def test_a_store_whose_rows_another_store_replaced_still_answers(tmp_path: Path) -> None:
    """A Store listed before a new file arrived still answers after a newer Store
    replaced (and removed) the partition's remembered rows: it lists again, as when a
    compaction replaced a file under it."""
    location = open_store(str(tmp_path))
    write_spans(location, [_failing(0, 1)])
    older = Store(str(tmp_path))
    assert [("ValueError", 1)] == older.sql(GROUPS).fetchall()
    write_spans(location, [_failing(0, 2)])
    assert [("ValueError", 2)] == Store(str(tmp_path)).sql(GROUPS).fetchall()
    assert [("ValueError", 2)] == older.sql(GROUPS).fetchall()


def test_handled_errors_of_running_spans_are_remembered(tmp_path: Path) -> None:
    """A caught error logged by a span still running (only a `started` snapshot) is an
    occurrence, from the remembered rows as from the live view."""
    location = open_store(str(tmp_path))
    trace = trace_id_from_w3c("2" * 32, START_US // 1_000_000)
    caught = HandledError(time=START_US + 1, type="KeyError", message="gone", traceback="")
    running = make_span(
        trace, "worker", start_us=START_US, duration_us=None, status="started", handled=(caught,)
    )
    write_spans(location, [running])
    query = "select error_type, handled, span_id from error_occurrences"
    assert [("KeyError", True, running.span_id)] == Store(str(tmp_path)).sql(query).fetchall()
    assert [("KeyError", True, running.span_id)] == Store(str(tmp_path)).sql(query).fetchall()


def test_dashboard_runs_across_partitions_from_remembered_candidates(tmp_path: Path) -> None:
    """A running root just before midnight takes its end from spans of the next day's
    partition, also once the candidates are remembered and a later span arrives there."""
    location = open_store(str(tmp_path))
    start = START_US + DAY_US - 3_600_000_000 - 10  # day 0, 10 us before midnight
    trace = trace_id_from_w3c("3" * 32, start // 1_000_000)
    root = make_span(trace, "nightly", start_us=start, duration_us=None, status="started")
    child = make_span(
        trace, "step", start_us=start + 20, duration_us=10, parent=root.span_id, seq=2
    )
    write_spans(location, [root, child])
    query = "select name, running, p50_us from dashboard"
    first = Store(str(tmp_path)).sql(query).fetchall()
    later = make_span(
        trace, "step", start_us=start + 50, duration_us=50, parent=root.span_id, seq=3
    )
    write_spans(location, [later])
    second = Store(str(tmp_path)).sql(query).fetchall()
    assert ([("nightly", 1, 30.0)], [("nightly", 1, 100.0)]) == (first, second)


def test_an_unwritable_cache_answers_from_the_live_views(tmp_path: Path, cache_dir: Path) -> None:
    """When the derived rows cannot be written, the error views and the dashboard answer
    from the store's files as before."""
    (cache_dir / "derived").write_text("not a directory")
    location = open_store(str(tmp_path))
    write_spans(location, [_failing(0, 1), _failing(0, 2)])
    store = Store(str(tmp_path))
    groups = store.sql(GROUPS).fetchall()
    runs = store.sql("select name, runs::int, failed::int from dashboard").fetchall()
    assert ([("ValueError", 2)], [("job", 2, 2)]) == (groups, runs)


def test_rows_of_pruned_partitions_are_dropped_when_the_store_lists(
    tmp_path: Path, cache_dir: Path
) -> None:
    """After prune removes a partition, the next Store's listing drops that partition's
    remembered rows (its index entry and its file); the other partition's stay."""
    location = open_store(str(tmp_path))
    write_spans(location, [_failing(0, 1)])
    write_spans(location, [_failing(1, 2, "KeyError")])
    before = Store(str(tmp_path)).sql(GROUPS).fetchall()
    (directory,) = (cache_dir / "derived").glob("*/error_spans-*")
    rows_before = len(list(directory.glob("*.parquet")))
    prune(location, older_than=timedelta(days=1), now=datetime(2026, 3, 3, tzinfo=UTC))
    after = Store(str(tmp_path)).sql(GROUPS).fetchall()
    index = json.loads((directory / "index.json").read_text())
    rows_after = len(list(directory.glob("*.parquet")))
    # (the rows files, plus the view's empty file)
    assert ([("KeyError", 1), ("ValueError", 1)], 3, [("KeyError", 1)], ["shop/2026-03-02"], 2) == (
        before,
        rows_before,
        after,
        sorted(index),
        rows_after,
    )


def test_rows_of_other_view_versions_are_removed(tmp_path: Path, cache_dir: Path) -> None:
    """Computing a view's rows removes this store's directories of other versions of the
    same view; other views' directories and other names stay."""
    location = open_store(str(tmp_path))
    write_spans(location, [_failing(0, 1)])
    Store(str(tmp_path)).sql(GROUPS).fetchall()
    (store_dir,) = (cache_dir / "derived").iterdir()
    for name in ("error_spans-0123456789ab", "run_candidates-0123456789ab", "error_spans-x"):
        (store_dir / name).mkdir()
        (store_dir / name / "rows.parquet").write_bytes(b"old")
    write_spans(location, [_failing(0, 2)])
    assert [("ValueError", 2)] == Store(str(tmp_path)).sql(GROUPS).fetchall()
    names = sorted(path.name for path in store_dir.iterdir())
    own = [name for name in names if name.startswith("error_spans-") and name != "error_spans-x"]
    assert ["error_spans-x", "run_candidates-0123456789ab"] == sorted(set(names) - set(own))
    assert 1 == len(own)
