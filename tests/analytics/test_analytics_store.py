"""The Store API: trace lookup, filters, polars access, errors, object stores."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from support.analytics_store import TRACE_IDS, build_records, build_store

from span_tree import w3c_trace_id
from span_tree.analytics import (
    AmbiguousTraceId,
    Filters,
    QueryError,
    Store,
    StoreNotFound,
    TraceNotFound,
)
from span_tree.storage import open_store, write_spans


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """The fixture store, opened once for the module (the tests only read it)."""
    return Store(build_store(tmp_path_factory.mktemp("store")))


def test_trace_by_ksuid(store: Store) -> None:
    """trace() returns the newest version of each span of the trace, in start order."""
    records = store.trace(TRACE_IDS["T1"])
    assert ["checkout", "db.query", "db.query", "background", "late"] == [r.name for r in records]
    assert {"succeeded"} == {r.status for r in records}


def test_trace_by_w3c_id(store: Store) -> None:
    """The 32-hex W3C form of a KSUID finds the same trace."""
    records = store.trace(w3c_trace_id(TRACE_IDS["T2"]))
    assert {TRACE_IDS["T2"]} == {r.trace_id for r in records}


def test_trace_by_unique_prefix(store: Store) -> None:
    """A prefix that only one trace id starts with finds that trace."""
    ids = sorted(store.sql("select trace_id from traces").fetchall())
    target = TRACE_IDS["T5"]
    others = [row[0] for row in ids if row[0] != target]
    length = next(
        n for n in range(1, 28) if not any(other.startswith(target[:n]) for other in others)
    )
    assert target == store.resolve_trace_id(target[:length])
    assert ["report"] == [r.name for r in store.trace(target[:length])]


def test_trace_ambiguous_prefix(store: Store) -> None:
    """A prefix shared by several traces raises AmbiguousTraceId listing candidates."""
    prefix = TRACE_IDS["T1"][:3]
    with pytest.raises(AmbiguousTraceId) as caught:
        store.trace(prefix)
    assert TRACE_IDS["T1"] in caught.value.candidates


@pytest.mark.parametrize("text", ["nope!", "0" * 27, "f" * 32, ""])
def test_trace_not_found(store: Store, text: str) -> None:
    """Unknown ids, unknown hex ids and non-ids raise TraceNotFound."""
    with pytest.raises(TraceNotFound):
        store.trace(text)


def test_scan_matches_spans_view(store: Store) -> None:
    """scan() has the same rows as the spans view (newest versions)."""
    scanned = store.scan().select("trace_id", "span_id", "status").sort("trace_id", "span_id")
    viewed = store.pl("select trace_id, span_id, status from spans order by trace_id, span_id")
    assert viewed.rows() == scanned.collect().rows()


def test_traces_filters(store: Store) -> None:
    """status, app, tags and time filters narrow the traces, newest first."""
    failed = store.traces(status="failed")
    assert [TRACE_IDS["T5"], TRACE_IDS["T3"], TRACE_IDS["T2"]] == failed["trace_id"].to_list()
    assert [TRACE_IDS["T5"]] == store.traces(tags={"job": "daily"})["trace_id"].to_list()
    assert 1 == store.traces(app="reporter").height
    window = store.traces(
        since="2026-01-10T09:02:00Z", until="2026-01-10T09:04:00Z", name="checkout"
    )
    assert [TRACE_IDS["T3"], TRACE_IDS["T2"]] == window["trace_id"].to_list()
    assert 2 == store.traces(limit=2).height


def test_errors_filters(store: Store) -> None:
    """errors() filters by handled/fatal, app and annotation status."""
    assert [True] == store.errors(handled=True)["handled"].to_list()
    assert ["parse.py:parse_header"] == store.errors(app="reporter")["location"].to_list()
    assert 3 == store.errors(status="open").height
    assert 0 == store.errors(since="2030-01-01").height


def test_slow_with_threshold(store: Store) -> None:
    """slow(threshold_us=...) lists every finished span at least that slow."""
    frame = store.slow(threshold_us=5_000, limit=None)
    assert [9000, 5000, 5000, 5000, 5000] == frame["duration_us"].to_list()


def test_helpers_return_polars(store: Store) -> None:
    """The typed helpers return polars DataFrames with the view's columns."""
    frame = store.dashboard()
    assert isinstance(frame, pl.DataFrame)
    assert store.pl("select * from dashboard limit 0").columns == frame.columns
    assert ["shop"] == store.namespaces()


def test_sql_binds_parameters(store: Store) -> None:
    """User values go in as bound parameters, quotes and all."""
    rows = store.sql("select count(*) from spans where name = ?", ["x' or '1'='1"]).fetchall()
    assert [(0,)] == rows


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ("select * form spans", "syntax error"),
        ("select nope from spans", 'column "nope" not found'),
        ("select * from no_such_view", "no_such_view"),
    ],
)
def test_sql_errors_are_query_errors(store: Store, query: str, fragment: str) -> None:
    """Bad SQL raises QueryError with DuckDB's message (which shows the position)."""
    with pytest.raises(QueryError) as caught:
        store.pl(query)
    assert fragment in str(caught.value)


def test_missing_store(tmp_path: Path) -> None:
    """A local store path that does not exist raises StoreNotFound."""
    with pytest.raises(StoreNotFound):
        Store(str(tmp_path / "missing"))


def test_annotate_rejects_bad_values(store: Store) -> None:
    """Unknown status or level is a ValueError, nothing is written."""
    with pytest.raises(ValueError, match="status"):
        store.annotate("abc", status="broken", level="OK")
    with pytest.raises(ValueError, match="level"):
        store.annotate("abc", status="open", level="LOUD")


def test_corrupt_file_is_reported_and_skipped(tmp_path: Path) -> None:
    """A corrupt file lands in Store.problems; the views read the other files."""
    root = build_store(tmp_path)
    partition = next((tmp_path / "spans").glob("namespace=shop/date=*"))
    (partition / "broken.parquet").write_bytes(b"PAR1 not really parquet PAR1")
    store = Store(root)
    assert 10 == store.sql("select count(*) from traces where app = 'checkout'").fetchall()[0][0]
    assert 1 == len(store.problems)
    assert "broken.parquet" in store.problems[0]


def test_namespace_restricts_the_store(tmp_path: Path) -> None:
    """Store(namespace=...) reads only that namespace's partitions."""
    first, _ = build_records()
    location = open_store(str(tmp_path))
    write_spans(location, first)
    write_spans(location, [r._replace(namespace="other") for r in first[:3]])
    assert ["other", "shop"] == Store(str(tmp_path)).namespaces()
    only = Store(str(tmp_path), namespace="other")
    assert [("other", 1)] == only.sql(
        "select namespace, count(*) from traces group by all"
    ).fetchall()


def test_refresh_sees_new_files(tmp_path: Path) -> None:
    """refresh() picks up files written after the store was opened."""
    store = Store(str(tmp_path))
    assert store.is_empty
    first, _ = build_records()
    write_spans(open_store(str(tmp_path)), first)
    store.refresh()
    assert 11 == store.sql("select count(*) from traces").fetchall()[0][0]


def test_object_store(tmp_path: Path) -> None:
    """A memory:// fsspec store works through DuckDB's registered filesystem."""
    url = f"memory://analytics-{tmp_path.name}"
    first, second = build_records()
    location = open_store(url)
    write_spans(location, first)
    write_spans(location, second)
    store = Store(url)
    assert 11 == store.sql("select count(*) from traces").fetchall()[0][0]
    assert TRACE_IDS["T1"] == store.trace(TRACE_IDS["T1"])[0].trace_id
    store.annotate("abc", status="crash", level="ALERT")
    assert [("abc", "crash")] == store.sql("select fingerprint, status from annotations").fetchall()
    assert store.scan().collect().height == store.sql("select count(*) from spans").fetchall()[0][0]


def _compact_under(store: Store, root: str) -> None:
    """Merge the store's files behind ``store``'s back, as a concurrent ``compact`` would."""
    from span_tree.storage import compact

    before = set(store.files)
    compact(open_store(root), min_age=0)
    assert before - set(Store(root).files), "compaction replaced no listed file"


def test_reports_survive_a_concurrent_compaction(tmp_path: Path) -> None:
    """A report re-lists the files and retries when a listed file was compacted away."""
    root = build_store(tmp_path)
    expected = Store(root).traces(limit=None).sort("trace_id")
    store = Store(root)
    _compact_under(store, root)
    assert expected.equals(store.traces(limit=None).sort("trace_id"))


@pytest.mark.parametrize("length", [27, 20])
def test_trace_lookup_survives_a_concurrent_compaction(tmp_path: Path, length: int) -> None:
    """trace() by KSUID or by prefix retries over the new file list after a compaction."""
    root = build_store(tmp_path)
    expected = Store(root).trace(TRACE_IDS["T1"])
    store = Store(root)
    _compact_under(store, root)
    assert expected == store.trace(TRACE_IDS["T1"][:length])


def test_a_removed_store_is_an_error_not_an_empty_store(tmp_path: Path) -> None:
    """When the whole store directory is gone, reports fail instead of showing nothing."""
    import shutil

    store = Store(build_store(tmp_path / "store"))
    store.traces()
    shutil.rmtree(tmp_path / "store")
    with pytest.raises(QueryError, match="No files found"):
        store.traces()
    unlisted = Store(build_store(tmp_path / "other"))
    shutil.rmtree(tmp_path / "other")
    with pytest.raises(StoreNotFound, match="no store at"):
        unlisted.traces()


def test_open_survives_a_file_removed_after_listing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Opening a store whose just-listed file vanished re-lists once instead of failing."""
    import span_tree.analytics._store as store_module

    root = build_store(tmp_path)
    real_list_spans = store_module.list_spans
    listings = []

    def list_then_remove(location: object, **options: object) -> object:
        listing, problems = real_list_spans(location, **options)  # type: ignore[arg-type]
        if not listings:
            Path(listing.files[0]).unlink()  # removed between listing and reading
        listings.append(listing)
        return listing, problems

    monkeypatch.setattr(store_module, "list_spans", list_then_remove)
    store = Store(root)
    store.sql("select count(*) from traces").fetchall()
    assert 2 == len(listings)
    assert store.files == listings[1].files


def test_a_bad_annotation_file_is_skipped_not_fatal(tmp_path: Path) -> None:
    """A corrupt file under annotations/ is a reported problem; the others still count."""
    root = build_store(tmp_path)
    Store(root).annotate("abc", status="crash", level="ALERT")
    (tmp_path / "annotations" / "stray.parquet").write_bytes(b"not parquet")
    store = Store(root)
    assert [("abc", "crash")] == store.sql("select fingerprint, status from annotations").fetchall()
    assert 1 == len(store.problems)
    assert "stray.parquet" in store.problems[0]


def test_span_browsing_takes_the_one_filter(store: Store) -> None:
    """span_names/spans_named take the reports' Filters: app, status, namespace and tags narrow."""
    reporter = store.span_names(Filters(app="reporter"))
    assert [("report", "failed", 0, 1)] == list(
        reporter.select("name", "status", "ok", "failed").iter_rows()
    )
    failed = store.span_names(Filters(status="failed"))
    assert [("report", 1), ("checkout", 2)] == list(failed.select("name", "failed").iter_rows())
    chosen = Filters(namespace="shop", tags={"env": "prod"})
    durations = store.spans_named(chosen, name="db.query")["duration_us"].to_list()
    assert [1000, 400, 300, 200, 100] == durations


def test_span_browsing_refuses_an_unknown_status(store: Store) -> None:
    """A status outside succeeded/failed/started/crash is one clear QueryError."""
    with pytest.raises(QueryError, match="status must be one of succeeded, failed, started, crash"):
        store.span_names(Filters(status="error"))
