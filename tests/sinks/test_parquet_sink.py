"""ParquetSink: buffering, flush by size/age/force, stats."""

from __future__ import annotations

import os
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from support.processes import run_python
from support.spans import make_spans, read_back

import span_tree
from span_tree._record import SPAN_COLUMNS, FinishedSpan, columns_from_records
from span_tree.sinks.parquet import ParquetSink, joined_columns
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
    """A buffered span is written by the first tick after max_age, with no further export."""
    sink = ParquetSink(str(tmp_path), spool_dir=str(tmp_path / "spool"), max_age=0.1)
    sink.export(make_spans(1))
    location = open_store(str(tmp_path))
    sink.tick()
    assert [] == span_files(location).files
    time.sleep(0.15)
    sink.tick()
    assert 1 == len(span_files(location).files)
    sink.shutdown()


def test_processor_ticks_its_sinks_when_idle(tmp_path: Path) -> None:
    """Under configure(), a buffered span reaches the store by max_age with no flush."""
    span_tree.configure(
        sinks=[ParquetSink(str(tmp_path), spool_dir=str(tmp_path / "spool"), max_age=0.1)],
        console=False,
        jsonl=False,
    )
    with span_tree.span("idle"):
        pass
    location = open_store(str(tmp_path))
    deadline = time.monotonic() + 10
    while not span_files(location).files and time.monotonic() < deadline:
        time.sleep(0.02)
    assert ["idle"] == [r.name for r in read_back(span_files(location).files)]


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


def blocked_store(tmp_path: Path) -> Path:
    """A store path that cannot be created (a regular file sits where a directory must be).

    Works as root too, unlike a read-only directory.
    """
    (tmp_path / "blocker").write_text("not a directory")
    return tmp_path / "blocker" / "store"


def test_unwritable_store_spools_then_replays(tmp_path: Path) -> None:
    """A failing store: spans go to the spool (counted); once it is back they are replayed."""
    store = blocked_store(tmp_path)
    sink = ParquetSink(
        str(store), spool_dir=str(tmp_path / "spool"), retries=2, backoff=0.01, down_delay=0.05
    )
    spans = make_spans(2)
    sink.export(spans)
    assert sink.force_flush(5.0)
    stats = sink.stats()
    assert (len(spans), 0, 0, 1) == (
        stats["spooled_spans"],
        stats["written_spans"],
        stats["lost_spans"],
        stats["spool_pending_files"],
    )
    assert 2 == stats["store_errors"] and 1 == stats["retries"]
    (tmp_path / "blocker").unlink()  # the store comes back
    deadline = time.monotonic() + 10
    while sink.stats()["spool_pending_files"] and time.monotonic() < deadline:
        time.sleep(0.02)
        sink.tick()  # the processor's worker does this on each wake-up
    sink.shutdown()
    stats = sink.stats()
    assert (len(spans), 0) == (stats["replayed_spans"], stats["spool_pending_files"])
    files = span_files(open_store(str(store))).files
    key = lambda r: r.span_id  # noqa: E731
    assert sorted(s.span_id for s in spans) == sorted(r.span_id for r in read_back(files))
    assert all(r.written_at for r in sorted(read_back(files), key=key))


def test_full_spool_counts_lost_spans(tmp_path: Path) -> None:
    """When neither the store nor the spool can keep spans, they are counted as lost."""
    sink = ParquetSink(
        str(blocked_store(tmp_path)),
        spool_dir=str(tmp_path / "spool"),
        spool_max_bytes=100,
        retries=1,
    )
    spans = make_spans(1)
    sink.export(spans)
    sink.force_flush(5.0)
    sink.shutdown()
    assert (len(spans), 0) == (sink.stats()["lost_spans"], sink.stats()["spooled_spans"])


def test_spool_from_earlier_run_is_replayed_by_new_sink(tmp_path: Path) -> None:
    """Spooled files left by a previous process are moved into the store by the next sink."""
    store = blocked_store(tmp_path)
    first = ParquetSink(str(store), spool_dir=str(tmp_path / "spool"), retries=1)
    first.export(make_spans(1))
    first.shutdown()
    (tmp_path / "blocker").unlink()
    second = ParquetSink(str(store), spool_dir=str(tmp_path / "spool"), max_age=0.1)
    second.tick()  # the first tick replays what an earlier run left
    second.shutdown()
    assert 1 == len(span_files(open_store(str(store))).files)


def test_unencodable_span_is_counted_not_raised(tmp_path: Path) -> None:
    """A record pyarrow cannot encode is counted as lost; the rest of its batch is kept."""
    sink = ParquetSink(str(tmp_path), spool_dir=str(tmp_path / "spool"), max_age=60)
    good = make_spans(3)
    bad = good[0]._replace(span_id="badbadbadbadbad0", start_time="not a time")
    sink.export([*good[:3], bad, *good[3:]])
    sink.force_flush(5.0)
    sink.shutdown()
    stats = sink.stats()
    assert (1, len(good)) == (stats["lost_spans"], stats["written_spans"])
    assert "encoding failed" in stats["last_store_error"]
    files = span_files(open_store(str(tmp_path))).files
    assert sorted(s.span_id for s in good) == sorted(r.span_id for r in read_back(files))


@pytest.mark.filterwarnings("ignore:This process.*fork:DeprecationWarning")
def test_forked_child_does_not_write_parents_buffer(tmp_path: Path) -> None:
    """After fork the child starts with an empty buffer: no span is written twice."""
    sink = ParquetSink(str(tmp_path), spool_dir=str(tmp_path / "spool"), max_age=60)
    parent_spans, child_spans = make_spans(2), make_spans(1)
    sink.export(parent_spans)
    pid = os.fork()
    if pid == 0:  # the child: write its own spans only, then leave without cleanup
        code = 1
        try:
            sink.export(child_spans)
            code = 0 if sink.force_flush(10) else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert 0 == os.waitstatus_to_exitcode(status)
    sink.shutdown()
    files = span_files(open_store(str(tmp_path))).files
    expected = sorted(s.span_id for s in parent_spans + child_spans)
    assert expected == sorted(r.span_id for r in read_back(files))


@pytest.mark.parametrize("sink_kind", ["parquet", "http"])
def test_both_sinks_spool_under_spantree_spool_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sink_kind: str
) -> None:
    """SPANTREE_SPOOL_DIR chooses the spool of the Parquet sink as of the HTTP sink."""
    from span_tree.sinks.http import HttpSink

    monkeypatch.setenv("SPANTREE_SPOOL_DIR", str(tmp_path / "spools"))
    if sink_kind == "parquet":
        parquet = ParquetSink(str(tmp_path / "store"))
        directory = parquet.spool.directory
        parquet.shutdown()
    else:
        http = HttpSink("http://127.0.0.1:1", api_key="k")
        directory = http.stats()["spool_dir"]
        http.shutdown()
    assert str(tmp_path / "spools") == os.path.dirname(directory)


def test_spool_falls_back_to_the_temp_dir_when_the_cache_is_read_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the user cache cannot be created (Lambda), the spool is in the temp dir."""
    import tempfile

    from span_tree._spool_dir import default_spool_dir

    (tmp_path / "not-a-dir").write_text("")
    monkeypatch.delenv("SPANTREE_SPOOL_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "not-a-dir"))
    directory = default_spool_dir("s3://bucket/store")
    assert os.path.join(tempfile.gettempdir(), "spantree-spool") == os.path.dirname(directory)


def test_columns_and_records_write_the_same_rows(tmp_path: Path) -> None:
    """A batch given as columns (the processor's form) is stored as its records would be."""
    from span_tree._record import columns_from_records
    from span_tree.typing import ColumnSink

    spans = make_spans(3)
    rows = []
    for form in ("records", "columns"):
        sink = ParquetSink(str(tmp_path / form), spool_dir=str(tmp_path / "spool"), max_age=60)
        assert isinstance(sink, ColumnSink)
        if form == "records":
            sink.export(spans[:4])
            sink.export(spans[4:])
        else:
            sink.export_columns(columns_from_records(spans[:4]))
            sink.export_columns(columns_from_records(spans[4:]))
        assert len(spans) == sink.stats()["buffered_spans"]
        assert sink.force_flush(5.0)
        sink.shutdown()
        stored = read_back(span_files(open_store(str(tmp_path / form))).files)
        rows.append(sorted(row._replace(written_at=None) for row in stored))
    assert sorted(spans) == rows[0] == rows[1]


def _worker_columns(spans: list[FinishedSpan]) -> list[list[Any]]:
    """Columns as the processor hands them over: a constant column is one object repeated."""
    columns = columns_from_records(spans)
    return [
        [column[0]] * len(column) if column.count(column[0]) == len(column) else column
        for column in columns
    ]


def test_buffered_batches_keep_each_rows_values(tmp_path: Path) -> None:
    """Batches joined at the write keep every row's value: a column constant within each
    batch but not across them, one differing in a single row, equal strings made apart."""
    spans = make_spans(30)
    batches = [_worker_columns(spans[index : index + 20]) for index in (0, 20, 40)]
    host = SPAN_COLUMNS.index("host")
    app = SPAN_COLUMNS.index("app")
    batches[0][host] = ["host-a"] * 20
    batches[1][host] = ["host-b"] * 20
    batches[2][host] = ["".join(["host-", "a"])] * 20  # equal to batch 0's, another object
    batches[1][app] = [batches[1][app][0]] * 20
    batches[1][app][3] = "other-app"
    sink = ParquetSink(str(tmp_path / "s"), spool_dir=str(tmp_path / "spool"), max_age=60)
    for columns in batches:
        sink.export_columns(columns)
    assert sink.force_flush(5.0)
    sink.shutdown()
    expected = [
        row for columns in batches for row in map(FinishedSpan._make, zip(*columns, strict=True))
    ]
    stored = read_back(span_files(open_store(str(tmp_path / "s"))).files)
    assert sorted(expected) == sorted(row._replace(written_at=None) for row in stored)
    assert ["host-a"] * 40 + ["host-b"] * 20 == sorted(row.host for row in stored)
    assert 1 == [row.app for row in stored].count("other-app")


def test_joined_columns_repeat_a_shared_value(tmp_path: Path) -> None:
    """A column holding one value in every batch is joined as that value repeated."""
    spans = make_spans(40)
    batches = [_worker_columns(spans[:40]), _worker_columns(spans[40:])]
    namespace = SPAN_COLUMNS.index("namespace")
    joined = joined_columns(batches)
    assert [True] * 80 == [value is batches[0][namespace][0] for value in joined[namespace]]
    assert [s.span_id for s in spans] == list(joined[SPAN_COLUMNS.index("span_id")])


def test_columns_of_another_shape_are_refused_and_lose_nothing(tmp_path: Path) -> None:
    """A batch with a missing or short column is refused with one error; buffered spans stay."""
    sink = ParquetSink(str(tmp_path / "s"), spool_dir=str(tmp_path / "spool"), max_age=60)
    spans = make_spans(3)
    sink.export_columns(columns_from_records(spans))
    short = columns_from_records(make_spans(2))
    short[5] = short[5][:1]
    with pytest.raises(ValueError, match="span columns of one length expected"):
        sink.export_columns(short)
    with pytest.raises(ValueError, match="span columns of one length expected"):
        sink.export_columns(columns_from_records(spans)[:-1])
    assert len(spans) == sink.stats()["buffered_spans"]
    assert sink.force_flush(5.0)
    sink.shutdown()
    stored = read_back(span_files(open_store(str(tmp_path / "s"))).files)
    assert sorted(spans) == sorted(row._replace(written_at=None) for row in stored)


def test_batches_with_equal_values_of_other_types_keep_each_value(tmp_path: Path) -> None:
    """Buffered one-span batches whose attributes are equal but not alike (1, True, 1.0;
    0.0, -0.0) are each stored as given, as a record sink would see them."""
    for index, given in enumerate(([{"n": 1}, {"n": True}, {"n": 1.0}], [{"z": 0.0}, {"z": -0.0}])):
        spans = [
            span._replace(attributes=attributes)
            for span, attributes in zip(make_spans(len(given)), given, strict=False)
        ]
        store = str(tmp_path / f"s{index}")
        sink = ParquetSink(store, spool_dir=str(tmp_path / "spool"), max_age=60)
        for span in spans:
            sink.export([span])
        assert sink.force_flush(5.0)
        sink.shutdown()
        stored = read_back(span_files(open_store(store)).files)
        by_id = {row.span_id: repr(row.attributes) for row in stored}
        assert [repr(attributes) for attributes in given] == [by_id[s.span_id] for s in spans]


@pytest.mark.slow
def test_the_application_s_gc_disable_survives_a_parquet_write(tmp_path: Path) -> None:
    """gc.disable() called while the Parquet sink builds a batch's table stays in force:
    the write never turns the process-wide cyclic GC off or on (the application's profile
    hook on the worker thread disables it as the table is built)."""
    script = textwrap.dedent(
        """
        import gc, sys, threading
        import span_tree
        from span_tree.storage import open_store, span_files

        fired = []

        def profile(frame, event, arg):
            if event == "call" and frame.f_code.co_name == "columns_to_table" and not fired:
                fired.append(threading.current_thread().name)
                gc.disable()

        threading.setprofile(profile)  # applies to the threads span_tree starts
        span_tree.configure(store=sys.argv[1], console=False, jsonl=False)
        with span_tree.span("outer"):
            pass
        assert span_tree.flush(30)
        print(len(span_files(open_store(sys.argv[1])).files), fired, gc.isenabled())
        """
    )
    result = run_python(script, str(tmp_path / "store"))
    assert "" == result.stderr
    assert "1 ['span_tree-processor'] False" == result.stdout.strip()
