"""Store write throughput: finished spans -> Parquet files on local disk.

Compares, in the same run, span_tree's write path (the Parquet sink given a batch as the
processor's worker hands it over, as columns: Arrow conversion, stamping, sorting, zstd,
atomic rename; also ``write_spans`` of the same spans as records) with a hand-written
pyarrow baseline
(``pa.Table.from_pydict`` of the same rows already as Python columns, then
``pq.write_table`` with zstd), interleaved repeat by repeat, wall and CPU time; reports
the file size per million spans, and times compaction of many small files.

    python benchmarks/store_write.py                 # default sizes (~1 minute quiet)
    python benchmarks/store_write.py --full          # 10M rows in 1,000 files compaction
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from span_tree._record import (
    SCHEMA_VERSION,
    Event,
    FinishedSpan,
    HandledError,
    columns_from_records,
)
from span_tree.sinks.parquet import ParquetSink
from span_tree.storage import compact, list_span_files, open_store, span_files, write_spans
from span_tree.storage.schema import SPAN_SCHEMA, records_to_table

OURS = "span_tree ParquetSink export_columns"  # the worker's columns -> the sink -> files
RECORDS = "write_spans of records"
CONVERT = "records_to_table only"
BASELINE = "pyarrow from_pydict + write_table"
RESULTS = Path(__file__).parent / "results" / "store_write.json"
BASE_US = 1_764_000_000_000_000


def make_records(count: int, *, seed: int = 7) -> list[FinishedSpan]:
    """Realistic spans: traces of ~8 spans, attributes, some events and errors."""
    rng = random.Random(seed)
    names = [f"service.op_{i}" for i in range(40)]
    records = []
    trace_id = ""
    root = None
    for index in range(count):
        if index % 8 == 0:
            trace_id = f"{rng.getrandbits(160):027x}"[:27]
            root = None
        span_id = f"{rng.getrandbits(64):016x}"
        start = BASE_US + index * 1_000 + rng.randrange(1000)
        duration = rng.randrange(50, 200_000)
        events: tuple[Event, ...] = ()
        if index % 3 == 0:
            events = (
                Event(
                    start + 10,
                    index,
                    "INFO",
                    "app.db",
                    f"query {index} took {duration}us",
                    "/app/db.py",
                    42,
                    {"rows": index % 97},
                ),
            )
        failed = index % 50 == 0
        records.append(
            FinishedSpan(
                namespace="bench",
                date="2025-11-24",
                trace_id=trace_id,
                span_id=span_id,
                parent_id=root,
                seq=index % 8,
                name=rng.choice(names),
                kind="internal",
                status="failed" if failed else "succeeded",
                level="ERROR" if failed else "INFO",
                start_time=start,
                end_time=start + duration,
                duration_us=duration,
                file="/app/service.py",
                line=100 + index % 50,
                function="handle",
                app="bench",
                app_version="1.2.3",
                host="host-1",
                pid=4242,
                thread="MainThread",
                task=None,
                tags={"env": "prod", "region": "eu-west-1"},
                attributes={"user_id": index % 1000, "path": f"/items/{index % 300}"},
                error_type="ValueError" if failed else None,
                error_message=f"bad value {index}" if failed else None,
                error_traceback="Traceback ...\nValueError" if failed else None,
                handled_errors=(HandledError(start + 5, "KeyError", "k", "tb"),)
                if index % 97 == 0
                else (),
                events=events,
                links=(),
                ref_src=(),
                ref_dest=(),
                written_at=None,
                schema_version=SCHEMA_VERSION,
            )
        )
        root = root or span_id
    return records


def as_columns(records: list[FinishedSpan]) -> dict[str, list[Any]]:
    """The same spans as Python columns in Arrow form (what a hand-written exporter holds)."""
    table = records_to_table(records)
    return table.to_pydict()


def timed(repeats: int, actions: dict[str, Any]) -> dict[str, tuple[float, float]]:
    """Median wall-clock and median CPU seconds of ``repeats`` runs of each action.

    The actions take turns (A, B, C, A, B, C...), so a burst of load from other work on
    a shared machine hits them alike; CPU time (this process, all threads) is the
    steadier figure there.
    """
    walls: dict[str, list[float]] = {name: [] for name in actions}
    cpus: dict[str, list[float]] = {name: [] for name in actions}
    for _ in range(repeats):
        for name, action in actions.items():
            wall, cpu = time.perf_counter(), time.process_time()
            action()
            walls[name].append(time.perf_counter() - wall)
            cpus[name].append(time.process_time() - cpu)
    return {
        name: (statistics.median(walls[name]), statistics.median(cpus[name])) for name in actions
    }


def bench_write(count: int, repeats: int, workdir: Path) -> dict[str, Any]:
    records = make_records(count)
    columns = as_columns(records)
    store = workdir / "store"

    spool = workdir / "spool"
    span_columns = columns_from_records(records)  # what the worker hands the Parquet sink

    def ours() -> None:
        shutil.rmtree(store, ignore_errors=True)
        sink = ParquetSink(
            str(store), spool_dir=str(spool), max_rows=count + 1, compact_interval=None
        )
        sink.export_columns(span_columns)
        if not sink.force_flush(600) or sink.stats()["written_spans"] != count:
            raise RuntimeError(f"the Parquet sink did not write the batch: {sink.stats()}")
        sink.shutdown()

    def records_api() -> None:
        shutil.rmtree(store, ignore_errors=True)
        write_spans(open_store(str(store)), records)

    def convert_only() -> None:
        records_to_table(records)

    def baseline() -> None:
        table = pa.Table.from_pydict(columns, schema=SPAN_SCHEMA)
        pq.write_table(table, workdir / "baseline.parquet", compression="zstd")

    results: dict[str, Any] = {}
    timings = timed(
        repeats, {OURS: ours, RECORDS: records_api, CONVERT: convert_only, BASELINE: baseline}
    )
    for name, (wall, cpu) in timings.items():
        results[name] = {
            "median_s": wall,
            "spans_per_s": count / wall,
            "median_cpu_s": cpu,
            "spans_per_cpu_s": count / cpu,
        }
    size = sum(os.path.getsize(p) for p in span_files(open_store(str(store))).files)
    results["file_mb_per_million_spans"] = size / count * 1_000_000 / 1e6
    ours_row, base_row = results[OURS], results[BASELINE]
    results["ratio_vs_baseline"] = ours_row["median_s"] / base_row["median_s"]
    results["cpu_ratio_vs_baseline"] = ours_row["median_cpu_s"] / base_row["median_cpu_s"]
    return results


def bench_compact(total_rows: int, files: int, workdir: Path, *, jemalloc: bool) -> dict[str, Any]:
    store = workdir / "compact"
    shutil.rmtree(store, ignore_errors=True)
    location = open_store(str(store))
    per_file = total_rows // files
    chunk = make_records(per_file, seed=11)
    for index in range(files):
        # New span ids per file so rows are distinct; same shape and size.
        batch = [r._replace(span_id=f"{index:06x}{i:010x}") for i, r in enumerate(chunk)]
        write_spans(location, batch)
    before = len(span_files(location).files)
    previous = pa.default_memory_pool()
    if jemalloc:  # what `spantree compact` does (see span_tree/_commands/store.py)
        pa.set_memory_pool(pa.jemalloc_memory_pool())
    try:
        started, cpu = time.perf_counter(), time.process_time()
        result = compact(location, min_age=0)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    finally:
        pa.set_memory_pool(previous)
    # What readers read: the compacted files (the inputs stay hidden through the grace
    # period and go in a later pass).
    after = list_span_files(location)
    rows_after = sum(pq.read_metadata(path).num_rows for path in after.files)
    assert rows_after == per_file * files, "compaction lost or duplicated rows"
    return {
        "rows": per_file * files,
        "files_before": before,
        "files_after": len(after.files),
        "seconds": elapsed,
        "cpu_seconds": cpu,
        "rows_per_s": per_file * files / elapsed,
        "rows_per_cpu_s": per_file * files / cpu,
        "cpu_ms_per_file": cpu * 1000 / before,
        "merged_files": result.files_in,
        "memory_pool": "jemalloc" if jemalloc else previous.backend_name,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=200_000, help="spans per write run")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--compact-rows", type=int, default=1_000_000)
    parser.add_argument("--compact-files", type=int, default=200)
    parser.add_argument(
        "--tiny-files", type=int, default=2_000, help="files of 50 rows in the tiny-file compaction"
    )
    parser.add_argument("--full", action="store_true", help="compaction of 10M rows in 1000 files")
    parser.add_argument("--workdir", help="where to generate the stores (default: a temp dir)")
    parser.add_argument(
        "--default-pool",
        action="store_true",
        help="compact with Arrow's default memory pool instead of jemalloc (the CLI's)",
    )
    args = parser.parse_args()
    if args.full:
        args.compact_rows, args.compact_files = 10_000_000, 1_000
    pool = pa.default_memory_pool().backend_name
    workdir = Path(tempfile.mkdtemp(prefix="spantree-bench-", dir=args.workdir))
    try:
        write = bench_write(args.spans, args.repeats, workdir)
        compaction = bench_compact(
            args.compact_rows, args.compact_files, workdir, jemalloc=not args.default_pool
        )
        tiny = bench_compact(
            args.tiny_files * 50, args.tiny_files, workdir, jemalloc=not args.default_pool
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"write: {args.spans:,} spans, median of {args.repeats} (memory pool: {pool})")
    print(f"{'writer':36} {'wall s':>8} {'spans/s':>10} {'cpu s':>8} {'spans/cpu-s':>12}")
    for name in (OURS, RECORDS, CONVERT, BASELINE):
        row = write[name]
        print(
            f"{name:36} {row['median_s']:8.3f} {row['spans_per_s']:10,.0f}"
            f" {row['median_cpu_s']:8.3f} {row['spans_per_cpu_s']:12,.0f}"
        )
    print(
        f"ratio span_tree / baseline: {write['ratio_vs_baseline']:.2f}x wall,"
        f" {write['cpu_ratio_vs_baseline']:.2f}x cpu"
    )
    print(f"file size: {write['file_mb_per_million_spans']:.1f} MB per million spans")
    for result in (compaction, tiny):
        print(
            f"compact: {result['rows']:,} rows in {result['files_before']:,} files -> "
            f"{result['files_after']} files in {result['seconds']:.1f} s wall,"
            f" {result['cpu_seconds']:.1f} s cpu ({result['rows_per_s']:,.0f} rows/s,"
            f" {result['cpu_ms_per_file']:.1f} ms cpu per file, {result['memory_pool']} pool)"
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "args": vars(args),
                "memory_pool": pool,
                "write": write,
                "compact": compaction,
                "compact_tiny_files": tiny,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
