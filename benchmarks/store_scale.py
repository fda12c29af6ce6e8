"""The store at scale: cold ``spantree sql`` processes against plain DuckDB, same files.

Generates stores quickly (Arrow columns built with pyarrow compute, never one Python
record per span; files encoded exactly as span_tree's writer encodes them), then times,
in the same run, cold processes of ``spantree sql ...`` next to a plain
``python -c 'import duckdb; ...'`` glob query over the same files: process wall time
and peak RSS, both including interpreter start-up. The plain side is what a user would
type: ``read_parquet('<store>/spans/**/*.parquet', hive_partitioning=true)`` with no
deduplication at all.

- A: 10M spans in ~450 files (30 days x 3 namespaces x 5 files). ``count(*)``,
  ``span_stats``, ``error_groups``, ``dashboard``.
- B: ~1M spans in 20,000 files of 50 rows (7 days, one namespace). ``count(*)`` before
  compaction, one compaction pass (rows/s), ``count(*)`` after.
- C: 100M spans in 900 files (30 days x 3 namespaces x 10 files; ~2.5 GB, generated
  once, ~10 min). Every view once (no run out of memory), ``span_stats`` against its
  time on A, ``Store.trace(id)`` once the store is open, and a cold ``spantree trace
  ID`` against plain DuckDB's lookup of the same id.

Each ratio is printed next to its target from issue 9. Each run starts with an empty
span-tree cache directory: a query's first run (``1st run``, not in the medians) also
computes what span-tree remembers per partition (running spans, the error views' and the
dashboard's derived rows), which the timed runs then reuse.

0.5 % of the spans also have a ``started`` snapshot (a span still running when its
trace's root ended), written in another file of the same partition, as a real service
writes them.

    python benchmarks/store_scale.py                          # A and B under /work/data/read
    python benchmarks/store_scale.py --only A --repeats 5
    python benchmarks/store_scale.py --store DIR              # reuse (or create) stores in DIR
    python benchmarks/store_scale.py --only A,C               # C needs A's span_stats time

Prints a table and writes ``benchmarks/results/store_scale.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

RESULTS = Path(__file__).parent / "results" / "store_scale.json"
DEFAULT_ROOT = "/work/data/read/store_scale"
FIRST_DAY = datetime(2026, 1, 1, tzinfo=UTC)
SPANS_PER_TRACE = 10
STARTED_SHARE = 0.005
ERROR_SHARE = 0.02
ERROR_KINDS = (
    ("ValueError", "invalid quantity ", " for sku", "orders.py", "validate"),
    ("KeyError", "'user:", "'", "cache.py", "get"),
    ("TimeoutError", "upstream timed out after ", "ms", "http.py", "call"),
    ("ConnectionError", "connection to 10.0.0.", " refused", "db.py", "connect"),
    ("PermissionError", "cannot open /data/", "/export.csv", "export.py", "write"),
)
ROOT_NAMES = [f"GET /api/v1/resource_{i}" for i in range(20)]
CHILD_NAMES = [f"service_{i // 10}.op_{i % 10}" for i in range(180)]


@dataclass(frozen=True)
class Shape:
    """One store to generate: ``days`` x ``namespaces`` partitions of ``files`` files."""

    name: str
    spans: int
    days: int
    namespaces: tuple[str, ...]
    files_per_partition: int


SHAPES = {
    "A": Shape("A", 10_000_000, 30, ("shop", "billing", "search"), 5),
    "B": Shape("B", 1_000_000, 7, ("quiet",), 20_000 // 7),
    "C": Shape("C", 100_000_000, 30, ("shop", "billing", "search"), 10),
}


# -- generation ------------------------------------------------------------------------


def _uniform(count: int) -> pa.Array:
    return pc.random(count)


def _ints(count: int, below: int) -> pa.Array:
    return pc.cast(pc.floor(pc.multiply(_uniform(count), below)), pa.int64())


def _hex_ids(count: int, chars: int) -> pa.Array:
    """``count`` random lower-case hex strings of ``chars`` characters."""
    text = os.urandom(count * chars // 2).hex().encode()
    offsets = pa.array(range(0, count * chars + 1, chars), pa.int32())
    return pa.StringArray.from_buffers(count, offsets.buffers()[1], pa.py_buffer(text))


def _repeat_each(values: pa.Array, times: int) -> pa.Array:
    indices = pa.array([i // times for i in range(len(values) * times)], pa.int64())
    return values.take(indices)


def _empty_lists(count: int, value_type: pa.DataType) -> pa.Array:
    offsets = pa.array([0] * (count + 1), pa.int32())
    return pa.ListArray.from_arrays(offsets, pa.array([], value_type))


def _tags(count: int, field_type: pa.DataType) -> pa.Array:
    keys = pa.array(["env", "region"] * count)
    values = pa.array(["prod", "eu"] * count)
    offsets = pa.array(range(0, 2 * count + 1, 2), pa.int32())
    return pa.MapArray.from_arrays(offsets, keys, values, type=field_type)


def partition_table(namespace: str, day: int, count: int, stamp: int) -> pa.Table:
    """``count`` finished spans of one namespace and day, in traces of 10 spans."""
    from span_tree._ids import trace_id_from_w3c
    from span_tree.storage.schema import SPAN_SCHEMA

    traces = max(1, count // SPANS_PER_TRACE)
    count = traces * SPANS_PER_TRACE
    day_start = int((FIRST_DAY + timedelta(days=day)).timestamp() * 1_000_000)
    offsets = sorted(pc.multiply(_uniform(traces), 86_000_000_000.0).to_pylist())
    trace_starts = [day_start + int(offset) for offset in offsets]
    payloads = os.urandom(16 * traces).hex()
    trace_ids = pa.array(
        [
            trace_id_from_w3c(payloads[32 * i : 32 * i + 32], trace_starts[i] // 1_000_000)
            for i in range(traces)
        ]
    )
    index_in_trace = pa.array(list(range(SPANS_PER_TRACE)) * traces, pa.int64())
    is_root = pc.equal(index_in_trace, 0)
    span_ids = _hex_ids(count, 16)
    root_ids = _repeat_each(span_ids.take(pa.array(range(0, count, SPANS_PER_TRACE))), 10)
    starts = pc.add(
        _repeat_each(pa.array(trace_starts, pa.int64()), 10), pc.multiply(index_in_trace, 10)
    )
    root_names = pa.array(ROOT_NAMES).take(_repeat_each(_ints(traces, len(ROOT_NAMES)), 10))
    child_names = pa.array(CHILD_NAMES).take(_ints(count, len(CHILD_NAMES)))
    names = pc.if_else(is_root, root_names, child_names)
    # Log-normal durations (Box-Muller), scaled per name so percentiles differ by name.
    normal = pc.multiply(
        pc.sqrt(pc.multiply(pc.ln(pc.add(_uniform(count), 1e-12)), -2.0)),
        pc.cos(pc.multiply(_uniform(count), 6.283185307179586)),
    )
    scale = pc.add(pc.multiply(pc.cast(pc.utf8_length(names), pa.float64()), 120.0), 200.0)
    durations = pc.add(pc.cast(pc.floor(pc.multiply(pc.exp(normal), scale)), pa.int64()), 1)
    failed = pc.less(_uniform(count), ERROR_SHARE)
    kind = _ints(count, len(ERROR_KINDS))
    number = pc.cast(_ints(count, 10_000), pa.string())

    def error_column(part: int) -> pa.Array:
        return pa.array([k[part] for k in ERROR_KINDS]).take(kind)

    null_text = pa.nulls(count, pa.string())
    error_types = pc.if_else(failed, error_column(0), null_text)
    messages = pc.if_else(
        failed,
        pc.binary_join_element_wise(error_column(1), number, error_column(2), ""),
        null_text,
    )
    tracebacks = pc.if_else(
        failed,
        pc.binary_join_element_wise(
            'Traceback (most recent call last):\n  File "/app/',
            error_column(3),
            '", line 42, in ',
            error_column(4),
            "\n",
            error_types,
            ": ",
            messages,
            "\n",
            "",
        ),
        null_text,
    )
    ts = pa.timestamp("us", tz="UTC")
    columns: dict[str, pa.Array] = {
        "namespace": pa.array([namespace] * count),
        "date": pa.array([(FIRST_DAY + timedelta(days=day)).strftime("%Y-%m-%d")] * count),
        "trace_id": _repeat_each(trace_ids, 10),
        "span_id": span_ids,
        "parent_id": pc.if_else(is_root, pa.nulls(count, pa.string()), root_ids),
        "seq": pc.add(index_in_trace, 1),
        "name": names,
        "kind": pc.if_else(is_root, "server", "internal"),
        "status": pc.if_else(failed, "failed", "succeeded"),
        "level": pc.if_else(failed, "ERROR", "INFO"),
        "start_time": pc.cast(starts, ts),
        "end_time": pc.cast(pc.add(starts, durations), ts),
        "duration_us": durations,
        "file": pa.array(["/app/handlers.py"] * count),
        "line": pc.cast(pc.add(index_in_trace, 10), pa.int32()),
        "function": names,
        "app": pa.array([f"{namespace}-api"] * count),
        "app_version": pa.array(["2.3.1"] * count),
        "host": pc.binary_join_element_wise("web-", pc.cast(_ints(count, 4), pa.string()), ""),
        "pid": pc.add(_ints(count, 8), 1000),
        "thread": pa.array(["MainThread"] * count),
        "task": pa.nulls(count, pa.string()),
        "tags": _tags(count, SPAN_SCHEMA.field("tags").type),
        "attributes": pc.binary_join_element_wise(
            '{"user": ', pc.cast(_ints(count, 100_000), pa.string()), "}", ""
        ),
        "error_type": error_types,
        "error_message": messages,
        "error_traceback": tracebacks,
        "handled_errors": _empty_lists(count, SPAN_SCHEMA.field("handled_errors").type.value_type),
        "events": _empty_lists(count, SPAN_SCHEMA.field("events").type.value_type),
        "links": _empty_lists(count, pa.string()),
        "ref_src": _empty_lists(count, pa.string()),
        "ref_dest": _empty_lists(count, pa.string()),
        "written_at": pc.cast(pa.array([stamp] * count, pa.int64()), ts),
        "schema_version": pa.array([1] * count, pa.int32()),
    }
    return pa.Table.from_pydict(columns, schema=SPAN_SCHEMA)


def _started_versions(table: pa.Table, stamp: int) -> pa.Table:
    """``started`` snapshots of a random ``STARTED_SHARE`` of the spans (written earlier)."""
    chosen = table.filter(pc.less(_uniform(table.num_rows), STARTED_SHARE))
    count = chosen.num_rows
    ts = pa.timestamp("us", tz="UTC")
    for name, value in (
        ("status", pa.array(["started"] * count)),
        ("level", pa.array(["INFO"] * count)),
        ("end_time", pa.nulls(count, ts)),
        ("duration_us", pa.nulls(count, pa.int64())),
        ("error_type", pa.nulls(count, pa.string())),
        ("error_message", pa.nulls(count, pa.string())),
        ("error_traceback", pa.nulls(count, pa.string())),
        ("written_at", pc.cast(pa.array([stamp] * count, pa.int64()), ts)),
    ):
        index = chosen.schema.get_field_index(name)
        chosen = chosen.set_column(index, chosen.schema.field(index), value)
    return chosen


def _write(directory: Path, table: pa.Table) -> None:
    from span_tree.storage._layout import batch_file_name, new_batch_id
    from span_tree.storage._writer import sort_table, table_bytes

    path = directory / batch_file_name(new_batch_id())
    path.write_bytes(table_bytes(sort_table(table)))


def generate(root: Path, shape: Shape) -> None:
    """Write ``shape``'s store under ``root`` (replacing whatever is there)."""
    shutil.rmtree(root, ignore_errors=True)
    started = time.perf_counter()
    per_partition = shape.spans // (shape.days * len(shape.namespaces))
    stamp = int(time.time() * 1_000_000)
    written = 0
    for day in range(shape.days):
        for namespace in shape.namespaces:
            date = (FIRST_DAY + timedelta(days=day)).strftime("%Y-%m-%d")
            directory = root / "spans" / f"namespace={namespace}" / f"date={date}"
            directory.mkdir(parents=True)
            table = partition_table(namespace, day, per_partition, stamp)
            snapshots = _started_versions(table, stamp - 1)
            files = shape.files_per_partition
            size = -(-table.num_rows // files)
            # Whole traces per file, as a batch of a real writer holds (time order).
            size += -size % SPANS_PER_TRACE
            chunks = [table.slice(first, size) for first in range(0, table.num_rows, size)]
            chunks[0] = pa.concat_tables([chunks[0], snapshots])  # mostly another file
            for chunk in chunks:
                _write(directory, chunk)
            written += table.num_rows + snapshots.num_rows
        rate = written / (time.perf_counter() - started)
        print(f"  {shape.name}: day {day + 1}/{shape.days}, {written:,} rows ({rate:,.0f}/s)")
    (root / "bench.json").write_text(json.dumps({"spans": shape.spans, "rows": written}))


def ensure(root: Path, shape: Shape) -> None:
    marker = root / "bench.json"
    if marker.exists() and json.loads(marker.read_text())["spans"] == shape.spans:
        return
    print(f"generating store {shape.name} ({shape.spans:,} spans) into {root} ...", flush=True)
    generate(root, shape)


# -- timing ------------------------------------------------------------------------------

# What a user types: no deduplication, hive partitions, one glob.
PLAIN_SOURCE = "read_parquet('{glob}', hive_partitioning = true)"
PLAIN_QUERIES = {
    "count": "SELECT count(*) FROM {src}",
    "span_stats": (
        "SELECT namespace, app, name, count(*), count(*) FILTER (status = 'failed'),"
        " quantile_cont(duration_us, [0.5, 0.9, 0.95, 0.99]), max(duration_us),"
        " min(start_time), max(start_time) FROM {src} GROUP BY ALL"
    ),
    "error_groups": (
        "SELECT error_type, regexp_replace(error_message, '[0-9]+', '<n>', 'g') AS pattern,"
        " count(*), count(DISTINCT trace_id), min(start_time), max(start_time),"
        " arg_max(trace_id, start_time) FROM {src} WHERE status = 'failed' GROUP BY ALL"
    ),
    "dashboard": (
        "SELECT namespace, app, name, count(*), count(*) FILTER (status = 'failed'),"
        " max(start_time), quantile_cont(duration_us, [0.5, 0.99]) FROM {src}"
        " WHERE parent_id IS NULL GROUP BY ALL"
    ),
}
VIEW_QUERIES = {
    "count": "select count(*) from spans",
    "span_stats": "select * from span_stats",
    "error_groups": "select * from error_groups",
    "dashboard": "select * from dashboard",
}


# Issue 9's targets: the time ratio (ours / plain) and the peak-RSS ratio of each query.
TARGETS: dict[str, tuple[float | None, float | None]] = {
    "startup": (None, None),
    "count": (1.5, 1.5),
    "span_stats": (1.3, 1.5),
    "error_groups": (1.3, 1.5),
    "dashboard": (1.3, 1.5),
}
B_BEFORE_TARGET = 2.0  # x plain DuckDB, before compaction
B_AFTER_TARGET_S = 1.0  # cold count after one compaction pass, seconds
C_SPAN_STATS_TARGET = 12.0  # x its time on A
C_TRACE_OPEN_TARGET_MS = 150.0  # Store.trace(id) once the store is open
C_TRACE_COLD_TARGET = 2.0  # cold `spantree trace ID` x plain DuckDB's lookup


def _verdict(value: float, target: float | None) -> str:
    if target is None:
        return ""
    return f"<= {target:g} {'ok' if value <= target else 'MISS'}"


def _spantree() -> list[str]:
    exe = Path(sys.executable).parent / "spantree"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "span_tree.cli"]


def _cold(argv: list[str], env: dict[str, str]) -> tuple[float, float, float]:
    """Wall seconds, peak RSS (MiB) and CPU seconds (user + system, every thread) of one
    fresh process (output discarded)."""
    import tempfile

    with tempfile.TemporaryFile() as errors:
        started = time.perf_counter()
        process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=errors)
        # The kernel's peak RSS of the child (wait4 ru_maxrss), interpreter start included.
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            errors.seek(0)
            raise RuntimeError(f"{argv[:3]} failed: {errors.read().decode()[-500:]}")
    return wall, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


def _plain_argv(query: str) -> list[str]:
    code = f"import duckdb; print(duckdb.sql({query!r}).fetchall()[:3])"
    return [sys.executable, "-c", code]


# Start-up alone: what the CLI imports before it reads anything, next to `import duckdb`.
STARTUP_OURS = "import span_tree.cli, span_tree._commands.query, span_tree.analytics._formats"
STARTUP_PLAIN = "import duckdb"


def compare(root: Path, queries: list[str], repeats: int) -> list[dict[str, Any]]:
    """Cold ``spantree sql`` vs cold plain DuckDB, alternating, medians of ``repeats``.

    ``startup`` compares the imports alone (no store read).
    """
    import tempfile

    # An empty cache directory: each query's first run (the warm-up, reported as
    # spantree_first_s) computes what span-tree remembers per partition (running spans,
    # the error views' and the dashboard's derived rows); the timed runs reuse it.
    cache = tempfile.mkdtemp(prefix="spantree-bench-cache-")
    env = {**os.environ, "SPANTREE_STORE": str(root), "SPANTREE_CACHE_DIR": cache}
    src = PLAIN_SOURCE.format(glob=f"{root}/spans/**/*.parquet")
    rows = []
    try:
        for name in queries:
            if name == "startup":
                ours_argv = [sys.executable, "-c", STARTUP_OURS]
                plain_argv = [sys.executable, "-c", STARTUP_PLAIN]
            else:
                query = VIEW_QUERIES[name]
                ours_argv = [*_spantree(), "sql", "--store", str(root), "--format", "csv", query]
                plain_argv = _plain_argv(PLAIN_QUERIES[name].format(src=src))
            rows.append(_measure(name, ours_argv, plain_argv, env, repeats))
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    return rows


def _measure(
    name: str, ours_argv: list[str], plain_argv: list[str], env: dict[str, str], repeats: int
) -> dict[str, Any]:
    ours: list[tuple[float, float, float]] = []
    plain: list[tuple[float, float, float]] = []
    first = _cold(ours_argv, env)  # warm the page cache for both (and span-tree's cache)
    _cold(plain_argv, env)
    for _ in range(repeats):
        ours.append(_cold(ours_argv, env))
        plain.append(_cold(plain_argv, env))
    row: dict[str, Any] = {
        "query": name,
        "spantree_s": statistics.median(w for w, _, _ in ours),
        "plain_s": statistics.median(w for w, _, _ in plain),
        "spantree_rss_mib": statistics.median(r for _, r, _ in ours),
        "plain_rss_mib": statistics.median(r for _, r, _ in plain),
        # CPU time: what a loaded machine distorts least (wall time waits for the others).
        "spantree_cpu_s": statistics.median(c for _, _, c in ours),
        "plain_cpu_s": statistics.median(c for _, _, c in plain),
        # The first run, with span-tree's per-partition cache still empty.
        "spantree_first_s": first[0],
        "spantree_first_rss_mib": first[1],
    }
    row["ratio"] = row["spantree_s"] / row["plain_s"]
    row["rss_ratio"] = row["spantree_rss_mib"] / row["plain_rss_mib"]
    row["cpu_ratio"] = row["spantree_cpu_s"] / row["plain_cpu_s"]
    print(
        f"  {name}: spantree {row['spantree_s']:.2f}s ({row['spantree_cpu_s']:.2f}s CPU)"
        f" {row['spantree_rss_mib']:.0f} MiB, plain {row['plain_s']:.2f}s"
        f" ({row['plain_cpu_s']:.2f}s CPU) {row['plain_rss_mib']:.0f} MiB;"
        f" first run {row['spantree_first_s']:.2f}s {row['spantree_first_rss_mib']:.0f} MiB",
        flush=True,
    )
    return row


def _files_read(root: Path) -> int:
    """How many files a reader of ``root`` reads (superseded compaction inputs left out)."""
    from span_tree.storage import list_span_files, open_store

    return len(list_span_files(open_store(str(root))).files)


def compact_once(root: Path) -> dict[str, Any]:
    """One compaction pass over the whole store (every file old enough); rows/s."""
    code = (
        "import json, sys, time; from span_tree.storage import compact, open_store;"
        " t = time.perf_counter(); r = compact(open_store(sys.argv[1]), min_age=0);"
        " print(json.dumps({'seconds': time.perf_counter() - t, 'rows': r.rows,"
        " 'files_in': r.files_in, 'files_out': r.files_out}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(root)], check=True, capture_output=True, text=True
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["rows_per_s"] = result["rows"] / result["seconds"] if result["seconds"] else 0.0
    return result


def _table(
    title: str, rows: list[dict[str, Any]], targets: dict[str, tuple[float | None, float | None]]
) -> None:
    print(title)
    head = f"{'query':<14}{'spantree':>10}{'plain':>9}{'ratio':>7} {'target':<12}"
    print(
        f"{head}{'RSS':>8}{'plain RSS':>11}{'ratio':>7} {'target':<12}{'CPU ratio':>9}"
        f"{'1st run':>9}"
    )
    for row in rows:
        time_target, rss_target = targets.get(row["query"], (None, None))
        cpu = f"{row['cpu_ratio']:>9.2f}" if "cpu_ratio" in row else ""
        if "spantree_first_s" in row:
            cpu += f"{row['spantree_first_s']:>8.2f}s"
        print(
            f"{row['query']:<14}{row['spantree_s']:>9.2f}s{row['plain_s']:>8.2f}s"
            f"{row['ratio']:>7.2f} {_verdict(row['ratio'], time_target):<12}"
            f"{row['spantree_rss_mib']:>4.0f} MiB{row['plain_rss_mib']:>7.0f} MiB"
            f"{row['rss_ratio']:>7.2f} {_verdict(row['rss_ratio'], rss_target):<12}{cpu}"
        )


# -- C: 100M spans -------------------------------------------------------------------------


def _some_trace_id(root: Path) -> str:
    """A trace id from the middle of the store (a file of its 15th day)."""
    import pyarrow.parquet as pq

    files = sorted((root / "spans").rglob("*.parquet"))
    middle = files[len(files) // 2]
    column = pq.read_table(middle, columns=["trace_id"]).column("trace_id")
    return str(column[column.length() // 2])


def store_trace_ms(root: Path, trace_id: str, repeats: int) -> dict[str, Any]:
    """``Store.trace(id)`` in a fresh process once the store is open (listed), ms."""
    code = (
        "import json, sys, time; from span_tree.analytics import Store;"
        " s = Store(sys.argv[1]); s.is_empty; times = []\n"
        "for _ in range(int(sys.argv[3])):\n"
        "    t = time.perf_counter(); spans = s.trace(sys.argv[2]);"
        " times.append((time.perf_counter() - t) * 1000)\n"
        "print(json.dumps({'first_ms': times[0], 'median_ms': sorted(times)[len(times) // 2],"
        " 'spans': len(spans)}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(root), trace_id, str(max(repeats, 1))],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run_c(root: Path, repeats: int, a_span_stats_s: float | None) -> dict[str, Any]:
    """Every view once, span_stats against A, and the trace lookups."""
    env = {**os.environ, "SPANTREE_STORE": str(root)}
    views = compare(root, list(VIEW_QUERIES), 1)
    trace_id = _some_trace_id(root)
    ours_argv = [*_spantree(), "trace", "--store", str(root), "--format", "json", trace_id]
    src = PLAIN_SOURCE.format(glob=f"{root}/spans/**/*.parquet")
    plain_argv = _plain_argv(f"SELECT * FROM {src} WHERE trace_id = '{trace_id}'")
    cold_trace = _measure("trace", ours_argv, plain_argv, env, repeats)
    span_stats_s = next(row["spantree_s"] for row in views if row["query"] == "span_stats")
    return {
        "views": views,
        "trace_id": trace_id,
        "cold_trace": cold_trace,
        "store_trace": store_trace_ms(root, trace_id, repeats),
        "span_stats_vs_a": span_stats_s / a_span_stats_s if a_span_stats_s else None,
    }


def _print_c(c: dict[str, Any]) -> None:
    _table(f"C: {c['spans']:,} spans in {c['files']} files (one cold run each)", c["views"], {})
    if c["span_stats_vs_a"] is not None:
        ratio = c["span_stats_vs_a"]
        print(f"span_stats on C / on A: {ratio:.1f}x  {_verdict(ratio, C_SPAN_STATS_TARGET)}")
    st = c["store_trace"]
    print(
        f"Store.trace(id) once open: first {st['first_ms']:.0f} ms, median"
        f" {st['median_ms']:.0f} ms ({st['spans']} spans)"
        f"  {_verdict(st['median_ms'], C_TRACE_OPEN_TARGET_MS)}"
    )
    _table(
        "cold `spantree trace ID` vs plain lookup",
        [c["cold_trace"]],
        {"trace": (C_TRACE_COLD_TARGET, None)},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", default=DEFAULT_ROOT, help="directory holding the stores")
    parser.add_argument("--only", default="A,B", help="stores to run (comma list of A, B, C)")
    parser.add_argument("--repeats", type=int, default=3, help="cold runs per query and side")
    parser.add_argument("--generate-only", action="store_true", help="build the stores and stop")
    parser.add_argument(
        "--out", type=Path, default=RESULTS, help="results file (a loaded machine's run elsewhere)"
    )
    args = parser.parse_args()
    base = Path(args.store)
    results: dict[str, Any] = {"repeats": args.repeats, "cores": os.cpu_count()}
    if args.out.exists():
        results = {**json.loads(args.out.read_text()), **results}
    for name in args.only.split(","):
        shape = SHAPES[name]
        root = base / name
        ensure(root, shape)
        if args.generate_only:
            continue
        files = sum(1 for _ in (root / "spans").rglob("*.parquet"))
        print(f"store {name}: {shape.spans:,} spans in {files:,} files", flush=True)
        if name == "A":
            rows = compare(root, ["startup", *VIEW_QUERIES], args.repeats)
            results["A"] = {"spans": shape.spans, "files": files, "rows": rows}
        elif name == "C":
            a_rows = results.get("A", {}).get("rows", [])
            a_stats = next((r["spantree_s"] for r in a_rows if r["query"] == "span_stats"), None)
            results["C"] = {
                "spans": shape.spans,
                "files": files,
                **run_c(root, args.repeats, a_stats),
            }
        else:
            # B is compacted in place: work on a copy so the next run starts uncompacted.
            work = base / f"{name}-work"
            shutil.rmtree(work, ignore_errors=True)
            shutil.copytree(root, work)
            before = compare(work, ["count"], args.repeats)
            compaction = compact_once(work)
            after_files = sum(1 for _ in (work / "spans").rglob("*.parquet"))
            read_after = _files_read(work)
            after = compare(work, ["count"], args.repeats)
            results["B"] = {
                "spans": shape.spans,
                "files": files,
                "before": before,
                "compaction": compaction,
                "files_after": after_files,
                "files_read_after": read_after,
                "after": after,
            }
            shutil.rmtree(work, ignore_errors=True)
    if args.generate_only:
        return
    print()
    if "A" in results:
        a = results["A"]
        _table(
            f"A: {a['spans']:,} spans in {a['files']} files (cold processes, medians)",
            a["rows"],
            TARGETS,
        )
    if "B" in results:
        b = results["B"]
        _table(
            f"B: {b['spans']:,} spans in {b['files']:,} files, before compaction",
            b["before"],
            {"count": (B_BEFORE_TARGET, None)},
        )
        c = b["compaction"]
        print(
            f"compaction: {c['rows']:,} rows, {c['files_in']:,} -> {c['files_out']} files in"
            f" {c['seconds']:.1f}s ({c['rows_per_s']:,.0f} rows/s)"
        )
        _table(
            f"B after compaction ({b.get('files_read_after', '?')} files read of"
            f" {b['files_after']} on disk: the compacted inputs wait for their grace period,"
            " and the plain glob reads them all)",
            b["after"],
            {},
        )
        after_s = b["after"][0]["spantree_s"]
        print(f"cold count after compaction: {after_s:.2f}s  {_verdict(after_s, B_AFTER_TARGET_S)}")
    if "C" in results:
        _print_c(results["C"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
