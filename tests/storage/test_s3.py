"""The store on S3: a real moto server on loopback, s3fs as the client, DuckDB reading."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
from support.processes import hanging_endpoint

from span_tree.sinks.parquet import ParquetSink
from span_tree.storage import (
    compact,
    list_span_files,
    open_store,
    prune,
    span_files,
    write_spans,
)
from span_tree.storage.schema import table_to_records


def test_sink_writes_to_s3_and_duckdb_reads_it(
    s3_endpoint: Any, s3_bucket: str, tmp_path: Path, make_spans: Any
) -> None:
    """Spans written by the sink to s3:// read back with DuckDB over the fsspec filesystem."""
    store = f"s3://{s3_bucket}/prefix"
    sink = ParquetSink(
        store, storage_options=s3_endpoint.storage_options, spool_dir=str(tmp_path / "spool")
    )
    spans = make_spans(3, namespace="cloud")
    sink.export(spans)
    assert sink.force_flush(30)
    sink.shutdown()
    location = open_store(store, storage_options=s3_endpoint.storage_options)
    found = span_files(location)
    assert ([], 1) == (found.problems, len(found.files))
    assert found.urls[0].startswith(f"s3://{s3_bucket}/prefix/spans/namespace=cloud/date=")
    con = duckdb.connect()
    con.register_filesystem(s3_endpoint.filesystem())
    rows = con.execute(
        "select namespace, count(*), count(distinct span_id)"
        " from read_parquet(?, hive_partitioning=true, union_by_name=true) group by 1",
        [found.urls],
    ).fetchall()
    assert [("cloud", len(spans), len(spans))] == rows
    assert {"written_spans": len(spans), "lost_spans": 0, "spooled_spans": 0} == {
        key: sink.stats()[key] for key in ("written_spans", "lost_spans", "spooled_spans")
    }


def test_compact_and_prune_on_s3(s3_endpoint: Any, s3_bucket: str, make_spans: Any) -> None:
    """Compaction merges small S3 files without losing rows; prune deletes old partitions."""
    location = open_store(f"s3://{s3_bucket}", storage_options=s3_endpoint.storage_options)
    spans = make_spans(2)
    old = [span._replace(date="2020-01-01") for span in make_spans(1)]
    for index in range(4):
        write_spans(location, [span._replace(span_id=f"{index}{span.span_id}") for span in spans])
    write_spans(location, old)
    result = compact(location, min_age=0)
    assert (4, 1) == (result.files_in, result.files_out)  # the 2020 file is alone: kept
    found = span_files(location)
    assert 2 == len(found.files)
    rows = 0
    for path in found.files:
        with location.fs.open(path, "rb") as handle:
            rows += len(table_to_records(pq.read_table(handle)))
    assert 4 * len(spans) + len(old) == rows
    pruned = prune(location, older_than=timedelta(days=30), now=datetime.now(UTC))
    assert ["2020-01-01"] == [partition.date for partition in pruned.partitions]
    assert 1 == len(span_files(location).files)


def test_unreachable_s3_spools_and_never_blocks(
    tmp_path: Path, unreachable_s3_options: dict[str, Any], make_spans: Any
) -> None:
    """An S3 endpoint on a closed port: export and flush return, spans go to the spool."""
    sink = ParquetSink(
        "s3://nowhere/store",
        storage_options=unreachable_s3_options,
        spool_dir=str(tmp_path / "spool"),
        retries=2,
        backoff=0.05,
    )
    spans = make_spans(2)
    started = time.monotonic()
    sink.export(spans)
    sink.force_flush(20)
    sink.shutdown()
    assert time.monotonic() - started < 60  # bounded, not a timing assertion on speed
    stats = sink.stats()
    assert (len(spans), 0, 1) == (
        stats["spooled_spans"],
        stats["lost_spans"],
        stats["spool_pending_files"],
    )
    assert stats["last_store_error"]


def test_hanging_s3_is_given_up_on_and_spooled(tmp_path: Path, make_spans: Any) -> None:
    """An endpoint that accepts connections but never answers: flush returns, spans spool."""
    with hanging_endpoint() as url:
        options = {
            "key": "testing",
            "secret": "testing",
            "client_kwargs": {"endpoint_url": url, "region_name": "us-east-1"},
            "config_kwargs": {
                "connect_timeout": 2,
                "read_timeout": 5,
                "retries": {"max_attempts": 1},
            },
        }
        sink = ParquetSink(
            "s3://hanging/store",
            storage_options=options,
            spool_dir=str(tmp_path / "spool"),
            put_timeout=0.5,
        )
        spans = make_spans(1)
        sink.export(spans)
        assert sink.force_flush(10)
        stats = sink.stats()
        assert (len(spans), 0, True) == (
            stats["spooled_spans"],
            stats["written_spans"],
            stats["store_down"],
        )
        assert stats["last_store_error"].startswith("TimeoutError")
        sink.shutdown()


def test_idempotent_write_and_compaction_protocol_on_s3(
    s3_endpoint: Any, s3_bucket: str, make_spans: Any
) -> None:
    """On S3: a batch put twice is one object; compaction hides, then later deletes, inputs."""
    location = open_store(f"s3://{s3_bucket}", storage_options=s3_endpoint.storage_options)
    spans = make_spans(2)
    batch = "2Qe0Vq1cGm0vwyVn7b9y0Bo8aAa"
    first = write_spans(location, spans, batch_id=batch)
    assert first == write_spans(location, spans, batch_id=batch)  # a retry
    for index in range(3):
        write_spans(location, [span._replace(span_id=f"{index}{span.span_id}") for span in spans])

    def rows() -> tuple[int, int]:
        found = list_span_files(location)
        total = 0
        for path in found.files:
            with location.fs.open(path, "rb") as handle:
                total += pq.read_metadata(handle).num_rows
        return len(found.files), total

    assert (4, 4 * len(spans)) == rows()
    merged = compact(location, min_age=0, grace=3600)
    again = compact(location, min_age=0, grace=3600)  # the output is too young to delete
    assert (4, 1, 0) == (merged.files_in, merged.files_out, again.removed_replaced)
    assert (1, 4 * len(spans)) == rows()
    location.fs.invalidate_cache()
    assert 5 == len(location.fs.find(location.spans_root))  # inputs kept through the grace
    assert 4 == compact(location, min_age=0, grace=0).removed_replaced
    location.fs.invalidate_cache()
    assert (1, 1, 4 * len(spans)) == (len(location.fs.find(location.spans_root)), *rows())


def test_date_range_listing_on_s3(s3_endpoint: Any, s3_bucket: str, make_spans: Any) -> None:
    """On S3, a date range lists just its partitions, and sees files written since."""
    location = open_store(f"s3://{s3_bucket}/store", storage_options=s3_endpoint.storage_options)
    for day in ("2026-01-01", "2026-01-02"):
        for namespace in ("a", "b"):
            write_spans(
                location, [s._replace(date=day, namespace=namespace) for s in make_spans(1)]
            )
    found = list_span_files(location, first_date="2026-01-02")
    assert [
        ("namespace=a", "date=2026-01-02"),
        ("namespace=b", "date=2026-01-02"),
    ] == [tuple(url.split("/")[-3:-1]) for url in found.urls]
    assert all(url.startswith(f"s3://{s3_bucket}/store/spans/") for url in found.urls)
    other_process = s3_endpoint.filesystem()  # its own connection and listing cache
    existing = found.files[0]
    other_process.pipe_file(
        existing.replace(".b.parquet", "x.parquet"), other_process.cat_file(existing)
    )
    assert 2 == len(list_span_files(location, first_date="2026-01-02", namespace="a").files)
