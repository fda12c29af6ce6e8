"""The store layout, atomic writer and file validation (local disk and memory://)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from support.spans import make_spans, read_back

from span_tree.storage import FileProblem, open_store, span_files, write_spans


def test_open_store_local_path(tmp_path: Path) -> None:
    """A plain path opens as a local store with an absolute root and the file protocol."""
    location = open_store(str(tmp_path / "store"))
    assert (str(tmp_path / "store"), "file", True) == (
        location.root,
        location.protocol,
        location.is_local,
    )


def test_open_store_default_is_spantree_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No URL means the local store named by SPANTREE_STORE."""
    monkeypatch.setenv("SPANTREE_STORE", str(tmp_path))
    assert str(tmp_path) == open_store().root


def test_open_store_memory_url() -> None:
    """Any fsspec URL opens; the URL keeps its protocol."""
    location = open_store("memory://teststore/a")
    assert ("memory", "memory://teststore/a") == (location.protocol, location.url)


def test_write_spans_layout_and_round_trip(tmp_path: Path) -> None:
    """Spans land in namespace=/date= partitions and read back as the same records."""
    spans = make_spans(3, namespace="shop")
    location = open_store(str(tmp_path))
    paths = write_spans(location, spans)
    assert 1 == len(paths)
    date = spans[0].date
    assert paths[0].startswith(f"{tmp_path}/spans/namespace=shop/date={date}/")
    back = read_back(paths)
    assert all(record.written_at is not None for record in back)
    key = lambda r: r.span_id  # noqa: E731
    assert sorted((s._replace(written_at=None) for s in spans), key=key) == sorted(
        (r._replace(written_at=None) for r in back), key=key
    )


def test_rows_sorted_by_trace_and_start(tmp_path: Path) -> None:
    """Rows in a file are sorted by (trace_id, start_time)."""
    paths = write_spans(open_store(str(tmp_path)), list(reversed(make_spans(5))))
    table = pq.read_table(paths[0])
    keys = list(zip(table["trace_id"].to_pylist(), table["start_time"].to_pylist(), strict=True))
    assert sorted(keys) == keys
    assert "ZSTD" == pq.ParquetFile(paths[0]).metadata.row_group(0).column(0).compression


def test_seq_has_row_group_statistics(tmp_path: Path) -> None:
    """The seq column carries min/max statistics, so a reader's `seq = 0` (rows written
    without a seq) skips the row groups of files written with one."""
    paths = write_spans(open_store(str(tmp_path)), make_spans(5))
    group = pq.ParquetFile(paths[0]).metadata.row_group(0)
    names = [group.column(i).path_in_schema for i in range(group.num_columns)]
    statistics = group.column(names.index("seq")).statistics
    assert (True, 1) == (statistics.has_min_max, statistics.min)


def test_versions_of_one_span_in_one_write_get_increasing_stamps(tmp_path: Path) -> None:
    """A span written twice in one batch: the later version has the later written_at."""
    span = make_spans(1)[0]
    started = span._replace(status="started", end_time=None, duration_us=None)
    paths = write_spans(open_store(str(tmp_path)), [started, span])
    back = {r.status: r.written_at for r in read_back(paths) if r.span_id == span.span_id}
    assert back["succeeded"] is not None and back["started"] is not None
    assert back["succeeded"] > back["started"]


def test_span_files_reports_corrupt_and_foreign_files(tmp_path: Path) -> None:
    """Truncated Parquet, wrong schema and stray text are reported with path and skipped."""
    location = open_store(str(tmp_path))
    good = write_spans(location, make_spans(2))[0]
    partition = Path(good).parent
    truncated = partition / "truncated.parquet"
    truncated.write_bytes(Path(good).read_bytes()[:-40])
    foreign = partition / "foreign.parquet"
    pq.write_table(pa.table({"x": [1, 2]}), foreign)
    stray = partition / "notes.txt"
    stray.write_text("hello")
    (partition / ".inflight.parquet.123.tmp").write_bytes(b"PAR1")
    found = span_files(location)
    assert [good] == found.files
    reasons = {Path(p.path).name: p.reason for p in found.problems}
    assert {"truncated.parquet", "foreign.parquet", "notes.txt"} == set(reasons)
    assert reasons["foreign.parquet"].startswith("not a span file: missing column(s)")
    assert reasons["truncated.parquet"].startswith("unreadable Parquet footer")
    assert FileProblem(str(stray), "not a .parquet file") in found.problems


def test_span_files_namespace_filter(tmp_path: Path) -> None:
    """span_files(namespace=...) lists only that namespace's files."""
    location = open_store(str(tmp_path))
    write_spans(location, make_spans(1, namespace="a"))
    only_b = write_spans(location, make_spans(1, namespace="b"))
    assert only_b == span_files(location, namespace="b").files


def test_unsafe_namespace_is_made_safe(tmp_path: Path) -> None:
    """A namespace with path characters is stored under a safe name, in path and rows."""
    paths = write_spans(open_store(str(tmp_path)), make_spans(1, namespace="../evil/x"))
    assert "/namespace=_evil_x/" in paths[0]
    assert {"_evil_x"} == {r.namespace for r in read_back(paths)}


def test_namespace_with_a_final_newline_is_made_safe(tmp_path: Path) -> None:
    """A final newline in a namespace is no directory name character either."""
    paths = write_spans(open_store(str(tmp_path)), make_spans(1, namespace="shop\n"))
    assert "/namespace=shop_/" in paths[0]
    assert {"shop_"} == {r.namespace for r in read_back(paths)}


def test_memory_store_round_trip() -> None:
    """write_spans works on a non-local fsspec filesystem (one put per file)."""
    location = open_store("memory://roundtrip")
    spans = make_spans(2)
    paths = write_spans(location, spans)
    found = span_files(location)
    assert paths == found.files
    assert ["memory://" + paths[0].lstrip("/")] == found.urls
    with location.fs.open(paths[0], "rb") as handle:
        assert len(spans) == pq.read_table(handle).num_rows
    location.fs.rm(location.root, recursive=True)


def test_large_uniform_batch_round_trips(tmp_path: Path) -> None:
    """A batch big enough for the constant-column fast path reads back identical."""
    span = make_spans(1)[1]
    started = span._replace(status="started", end_time=None, duration_us=None, parent_id=None)
    spans = [
        (span if index % 2 else started)._replace(span_id=f"{index:016x}") for index in range(300)
    ]
    uniform = [started._replace(span_id=f"{index:016x}") for index in range(300, 400)]
    paths = write_spans(open_store(str(tmp_path)), spans)
    paths += write_spans(open_store(str(tmp_path)), uniform)
    key = lambda r: r.span_id  # noqa: E731
    expected = sorted(spans + uniform, key=key)
    back = sorted((r._replace(written_at=None) for r in read_back(paths)), key=key)
    assert expected == back


def test_batch_over_one_transposition_chunk_round_trips_sorted(tmp_path: Path) -> None:
    """A batch of several transposition chunks, with constant nested columns, reads back equal."""
    base = make_spans(1)
    spans = [
        base[index % 2]._replace(
            trace_id=f"{(index * 7919) % 10_007:027d}",
            span_id=f"{index:016x}",
            start_time=base[0].start_time + index,
            links=("x",) if index == 9_000 else (),
        )
        for index in range(10_000)
    ]
    paths = write_spans(open_store(str(tmp_path)), spans)
    table = pq.read_table(paths[0])
    keys = list(zip(table["trace_id"].to_pylist(), table["start_time"].to_pylist(), strict=True))
    assert sorted(keys) == keys
    key = lambda r: r.span_id  # noqa: E731
    back = sorted((r._replace(written_at=None) for r in read_back(paths)), key=key)
    assert spans == back


def test_record_with_a_malformed_date_lands_in_its_start_day(tmp_path: Path) -> None:
    """A hand-made record with an empty date is written under its start_time's day."""
    location = open_store(str(tmp_path))
    good = make_spans(2)
    broken = good[0]._replace(date="", span_id="feedfacefeedface")
    paths = write_spans(location, [broken, good[1]])
    expected_dir = f"date={good[0].date}"
    assert [expected_dir] == sorted({Path(path).parent.name for path in paths})
    found = span_files(location)
    assert [] == found.problems
    assert {good[0].date} == {record.date for record in read_back(found.files)}


def test_many_new_files_on_an_object_store_are_checked_together() -> None:
    """On a non-local store, 20 new files and a corrupt one get the same verdicts in order."""
    location = open_store("memory://many-files-check")
    spans = make_spans(1)
    written = [path for _ in range(20) for path in write_spans(location, spans)]
    corrupt = f"{written[0].rpartition('/')[0]}/0-corrupt.parquet"
    location.fs.pipe(corrupt, b"PAR1 not really parquet PAR1")
    found = span_files(location)
    assert sorted(written) == found.files
    assert [location.url_of(corrupt)] == [problem.path for problem in found.problems]
    location.fs.rm(location.root, recursive=True)


def test_spool_put_that_fails_leaves_no_temporary(tmp_path: Path) -> None:
    """A spooled file that cannot be put in place leaves no temporary file behind."""
    from span_tree.sinks._delivery import Spool

    spool = Spool(str(tmp_path / "spool"), suffix=".parquet", max_bytes=1 << 20)
    relative = "namespace=shop/date=2026-01-10/3Ma4nuHcDpqn5w4K3ycc5EpAv5v.parquet"
    (tmp_path / "spool" / relative / "occupied").mkdir(parents=True)  # rename must fail
    with pytest.raises(OSError):
        spool.put(relative, b"data")
    leftovers = [p.name for p in (tmp_path / "spool" / relative).parent.iterdir()]
    assert [Path(relative).name] == leftovers
    assert 0 == spool.size()


def test_a_failed_footer_read_is_not_remembered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file whose footer read failed (network) is listed again once reads work."""
    location = open_store(str(tmp_path))
    paths = write_spans(location, make_spans(1))

    def connection_reset(*args: object, **kwargs: object) -> None:
        raise ConnectionResetError("connection reset by peer")

    with monkeypatch.context() as patched:
        patched.setattr(location.fs, "open", connection_reset)
        during = span_files(location)
    after = span_files(location)
    assert ([], 1) == (during.files, len(during.problems))
    assert (paths, []) == (after.files, after.problems)


def test_column_batch_goes_to_each_rows_partition() -> None:
    """A batch of columns lands in one file per (namespace, date), whichever row differs."""
    from span_tree._record import SPAN_COLUMNS, columns_from_records
    from span_tree.storage._writer import prepare_column_files

    spans = make_spans(40)
    columns = columns_from_records(spans)
    namespace, date = SPAN_COLUMNS.index("namespace"), SPAN_COLUMNS.index("date")
    columns[namespace] = ["ns"] * len(spans)  # as the processor builds a constant column
    columns[date] = ["2026-11-27"] * len(spans)
    one = prepare_column_files(columns)
    assert [("namespace=ns/date=2026-11-27", len(spans))] == [
        (file.relative_path.rsplit("/", 1)[0], file.rows) for file in one
    ]
    columns[date][7] = "2026-11-28"  # neither the first, middle nor last row
    two = prepare_column_files(columns)
    assert [
        ("namespace=ns/date=2026-11-27", len(spans) - 1),
        ("namespace=ns/date=2026-11-28", 1),
    ] == sorted((file.relative_path.rsplit("/", 1)[0], file.rows) for file in two)
    day = next(file for file in two if "2026-11-28" in file.relative_path)
    assert [spans[7].span_id] == pq.read_table(pa.BufferReader(day.data))["span_id"].to_pylist()


def test_equal_values_of_unlike_types_are_stored_as_they_are() -> None:
    """A batch whose tags are all equal, one of them with True for 1: that row keeps its
    own tag text (equal is not "stored alike")."""
    from support.spans import unit_spans

    from span_tree.storage.schema import records_to_table

    spans = [span._replace(tags={"n": 1}) for span in unit_spans(80)]
    spans[40] = spans[40]._replace(tags={"n": True})
    table = records_to_table(spans, written_at=1, sort=False)
    texts = [dict(tags)["n"] for tags in table.column("tags").to_pylist()]
    assert ["1"] * 40 + ["True"] + ["1"] * 39 == texts


def test_empty_containers_made_apart_are_one_value_and_a_full_one_is_kept() -> None:
    """Empty attributes and tags made one per row count as one value (counted, not compared
    row by row); a single row with an attribute, or with ({"n": True}) among equal {"n": 1}
    attributes, keeps its own."""
    from support.spans import unit_spans

    from span_tree.storage.schema import holds_only, records_to_table

    spans = [span._replace(attributes={}, tags={}) for span in unit_spans(80)]
    assert holds_only([span.attributes for span in spans], spans[0].attributes)
    assert not holds_only([{"n": 1}, {"n": 1}], {"n": 1})  # equal, not the same object
    spans[40] = spans[40]._replace(attributes={"a": 1})
    table = records_to_table(spans, written_at=1, sort=False)
    assert ["{}"] * 40 + ['{"a":1}'] + ["{}"] * 39 == table.column("attributes").to_pylist()
    assert [[]] * 80 == table.column("tags").to_pylist()


@pytest.mark.slow
def test_child_forked_while_the_writer_pauses_the_gc_has_it_enabled() -> None:
    """A fork while the writer builds columns with the GC paused leaves the child's GC on
    (no thread of the child would ever turn it back on), and the parent's comes back."""
    import textwrap

    from support.processes import run_python

    script = textwrap.dedent(
        """
        import gc, os
        from span_tree.storage.schema import gc_paused

        with gc_paused():
            pid = os.fork()
            if pid == 0:
                os._exit(0 if gc.isenabled() else 3)
            status = os.waitpid(pid, 0)[1]
        print(os.waitstatus_to_exitcode(status), gc.isenabled())
        """
    )
    result = run_python(script)
    assert "" == result.stderr
    assert "0 True\n" == result.stdout


@pytest.mark.slow
def test_building_tables_sets_off_no_cyclic_gc_collection() -> None:
    """Converting 20k records (rows and log events) with the GC on sets off no collection:
    nothing per row that the GC tracks stays alive, so the writer needs no GC pause (a
    subprocess: no other thread allocating meanwhile)."""
    import textwrap

    from support.processes import run_python

    script = textwrap.dedent(
        """
        import gc, logging
        import span_tree
        from span_tree._record import columns_from_records
        from span_tree.storage._writer import prepare_column_files, prepare_files
        from span_tree.testing import capture_spans

        span_tree.configure(console=False, jsonl=False, store=None)
        with capture_spans() as spans:
            for index in range(4):
                with span_tree.span("root", index=index), span_tree.span("child"):
                    logging.getLogger("test").warning("step %s", index)
        records = list(spans) * 2_500
        columns = columns_from_records(records)
        started = []
        gc.set_threshold(700, 10, 10)  # CPython's default
        gc.collect()
        gc.callbacks.append(lambda phase, info: phase == "start" and started.append(info))
        rows = sum(item.rows for item in prepare_files(records))
        rows += sum(item.rows for item in prepare_column_files(columns))
        print(rows, started)
        """
    )
    result = run_python(script)
    assert "40000 []" == result.stdout.strip(), result.stderr[-2000:]
