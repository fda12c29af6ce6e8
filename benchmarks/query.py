"""Query speed of the analytics views against hand-written DuckDB SQL over the same files.

Generates a realistic store with span_tree's own writer (``write_spans``): ~200 span
names, traces of ~10 spans, log-normal durations skewed per name, 2 % errors, 30 days x
3 namespaces. Then, in one run, times each view next to the equivalent hand-written
query (same result: newest version per span), as medians of several repeats:

- ``span_stats`` (all names), ``error_groups``, ``dashboard``,
- trace lookup by id (``Store.trace``: prune by the KSUID's day and row-group stats),
- count for one day.

Peak memory (RSS) of the query phase is reported; generation runs in a child process
so it does not count. Targets: views within 1.3x of hand-written SQL; trace lookup
< 100 ms warm and span_stats < 2 s at 10M spans.

    python benchmarks/query.py                      # 1M spans (a few minutes)
    python benchmarks/query.py --spans 10000000     # the full target size
    python benchmarks/query.py --store DIR          # reuse (or create) a store in DIR
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from span_tree._ids import trace_id_from_w3c
from span_tree._record import SCHEMA_VERSION, FinishedSpan
from span_tree.analytics import Store
from span_tree.analytics._source import read_spans_sql
from span_tree.analytics._views import view_sql
from span_tree.storage import open_store, write_spans

RESULTS_DIR = Path(__file__).parent / "results"
DEFAULT_SPANS = 1_000_000
NAMESPACES = ("shop", "billing", "search")
DAYS = 30
FIRST_DAY = datetime(2026, 1, 1, tzinfo=UTC)
SPANS_PER_TRACE = 10
SPANS_PER_FILE = 25_000
ERROR_KINDS = (
    ("ValueError", "invalid quantity {n} for sku 'SKU-{m}'", "orders.py", "validate"),
    ("KeyError", "'user:{n}'", "cache.py", "get"),
    ("TimeoutError", "upstream timed out after {n}ms", "http.py", "call"),
    ("ConnectionError", "connection to 10.0.{n}.{m} refused", "db.py", "connect"),
    ("PermissionError", "cannot open /data/{n}/export-{m}.csv", "export.py", "write"),
)


# -- data --------------------------------------------------------------------------


def _names(rng: random.Random) -> tuple[list[str], list[str], dict[str, float]]:
    roots = [f"GET /api/v1/resource_{i}" for i in range(20)]
    children = [f"service_{i // 10}.op_{i % 10}" for i in range(180)]
    scale = {name: rng.lognormvariate(7, 1.2) for name in roots + children}
    return roots, children, scale


def _traceback(kind: tuple[str, str, str, str], message: str) -> str:
    return (
        "Traceback (most recent call last):\n"
        f'  File "/app/{kind[2]}", line 42, in {kind[3]}\n'
        f"{kind[0]}: {message}\n"
    )


def make_partition(namespace: str, day: int, count: int, rng: random.Random) -> list[FinishedSpan]:
    """``count`` spans of one namespace and day, in traces of ``SPANS_PER_TRACE``."""
    roots, children, scale = _names(random.Random(1))
    day_start = FIRST_DAY + timedelta(days=day)
    date = day_start.strftime("%Y-%m-%d")
    start_of_day = int(day_start.timestamp() * 1_000_000)
    records: list[FinishedSpan] = []
    traces = max(1, count // SPANS_PER_TRACE)
    offsets = sorted(rng.randrange(0, 86_000_000_000) for _ in range(traces))
    for offset in offsets:
        start = start_of_day + offset
        trace = trace_id_from_w3c(f"{rng.getrandbits(128):032x}", start // 1_000_000)
        root_id = f"{rng.getrandbits(64):016x}"
        root_name = rng.choice(roots)
        for index in range(SPANS_PER_TRACE):
            name = root_name if index == 0 else rng.choice(children)
            duration = int(rng.lognormvariate(0, 1.0) * scale[name]) + 1
            failed = rng.random() < 0.02
            error = rng.choice(ERROR_KINDS) if failed else None
            message = (
                error[1].format(n=rng.randrange(1, 10_000), m=rng.randrange(1, 99))
                if error
                else None
            )
            span_start = start + index * 10
            records.append(
                FinishedSpan(
                    namespace=namespace,
                    date=date,
                    trace_id=trace,
                    span_id=root_id if index == 0 else f"{rng.getrandbits(64):016x}",
                    parent_id=None if index == 0 else root_id,
                    seq=index + 1,
                    name=name,
                    kind="server" if index == 0 else "internal",
                    status="failed" if failed else "succeeded",
                    level="ERROR" if failed else "INFO",
                    start_time=span_start,
                    end_time=span_start + duration,
                    duration_us=duration,
                    file="/app/handlers.py",
                    line=10 + index,
                    function=name,
                    app=f"{namespace}-api",
                    app_version="2.3.1",
                    host=f"web-{rng.randrange(4)}",
                    pid=1000 + rng.randrange(8),
                    thread="MainThread",
                    task=None,
                    tags={"env": "prod", "region": "eu"},
                    attributes={"user": rng.randrange(100_000)},
                    error_type=error[0] if error else None,
                    error_message=message,
                    error_traceback=_traceback(error, message or "") if error else None,
                    handled_errors=(),
                    events=(),
                    links=(),
                    ref_src=(),
                    ref_dest=(),
                    written_at=None,
                    schema_version=SCHEMA_VERSION,
                )
            )
    return records


def generate(root: str, spans: int) -> None:
    """Write ``spans`` spans into the store at ``root`` (a child process runs this)."""
    location = open_store(root)
    per_partition = spans // (len(NAMESPACES) * DAYS)
    rng = random.Random(7)
    started = time.perf_counter()
    written = 0
    for day in range(DAYS):
        for namespace in NAMESPACES:
            records = make_partition(namespace, day, per_partition, rng)
            for first in range(0, len(records), SPANS_PER_FILE):
                write_spans(location, records[first : first + SPANS_PER_FILE])
            written += len(records)
        rate = written / (time.perf_counter() - started)
        print(f"  generated day {day + 1}/{DAYS}: {written:,} spans ({rate:,.0f}/s)", flush=True)
    (Path(root) / "bench.json").write_text(json.dumps({"spans": spans}))


# -- queries -------------------------------------------------------------------------


def _hand_written(files: list[str]) -> dict[str, str]:
    """The same answers as the views, each as one query over ``read_parquet``.

    Each computes exactly the view's result (newest version per span, the same
    fingerprint normalisation), written directly instead of through layered views.
    """
    source = f"({read_spans_sql(files)})"
    newest = (
        f"SELECT * FROM {source} QUALIFY row_number() OVER (PARTITION BY trace_id, span_id"
        " ORDER BY (status <> 'started') DESC, written_at DESC NULLS LAST) = 1"
    )
    # The error_occurrences definition (type + location + normalised message), inlined.
    occurrences = view_sql("error_occurrences").split(" AS\n", 1)[1]
    return {
        "span_stats": (
            "SELECT namespace, app, name, count(*) AS count,"
            " count(*) FILTER (status = 'failed') AS error_count,"
            " count(*) FILTER (status = 'failed') / count(*) AS error_rate,"
            " quantile_cont(duration_us, [0.5, 0.9, 0.95, 0.99]) FILTER (status <> 'started'),"
            f" max(duration_us), min(start_time), max(start_time) FROM ({newest})"
            " GROUP BY ALL"
        ),
        "error_groups": (
            f"WITH spans AS ({newest}), occurrences AS ({occurrences})"
            " SELECT fingerprint, any_value(handled), any_value(error_type),"
            " any_value(location), any_value(pattern), count(*), count(DISTINCT trace_id),"
            " min(time), max(time), arg_max(message, time), arg_max(trace_id, time),"
            " arg_max(span_id, time), arg_max(span_name, time), arg_max(namespace, time),"
            " arg_max(app, time), arg_max(traceback, time)"
            " FROM occurrences GROUP BY fingerprint"
        ),
        "dashboard": (
            f"WITH spans AS ({newest}), per_trace AS (SELECT trace_id,"
            " arg_min({'namespace': namespace, 'app': app, 'name': name, 'status': status,"
            " 'duration_us': duration_us}, {'p': parent_id IS NOT NULL, 's': start_time})"
            " AS root, min(start_time) AS start_time, max(end_time) AS end_time"
            " FROM spans GROUP BY trace_id),"
            " runs AS (SELECT trace_id, root.namespace, root.app, root.name, root.status,"
            " start_time, coalesce(root.duration_us,"
            " date_diff('microsecond', start_time, end_time)) AS duration_us FROM per_trace)"
            " SELECT namespace, app, name, arg_max(status, start_time), count(*),"
            " count(*) FILTER (status = 'succeeded'), count(*) FILTER (status = 'failed'),"
            " count(*) FILTER (status = 'started'),"
            " count(*) FILTER (status = 'failed') / count(*), max(start_time),"
            " arg_max(trace_id, start_time), quantile_cont(duration_us, 0.5),"
            " quantile_cont(duration_us, 0.99) FROM runs GROUP BY ALL"
        ),
        "count_one_day": (
            f"SELECT count(*) FROM (SELECT DISTINCT trace_id, span_id FROM {source} WHERE date = ?)"
        ),
    }


VIEW_QUERIES = {
    "span_stats": "SELECT * FROM span_stats",
    "error_groups": "SELECT * FROM error_groups",
    "dashboard": "SELECT * FROM dashboard",
    "count_one_day": "SELECT count(*) FROM spans WHERE date = ?",
}


def _median_seconds(run: Callable[[], Any], repeats: int) -> float:
    run()  # warm: file metadata, OS page cache
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _paired_medians(
    first: Callable[[], Any], second: Callable[[], Any], repeats: int
) -> tuple[tuple[float, float], tuple[float, float]]:
    """Wall and CPU medians of two queries run alternately: ((wall1, wall2), (cpu1, cpu2)).

    Alternating spreads the load of a shared machine over both; CPU time (all DuckDB
    threads of this process) is the steadier figure when other work competes.
    """
    first()
    second()
    walls: tuple[list[float], list[float]] = ([], [])
    cpus: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for index, run in enumerate((first, second)):
            wall, cpu = time.perf_counter(), time.process_time()
            run()
            walls[index].append(time.perf_counter() - wall)
            cpus[index].append(time.process_time() - cpu)
    median = statistics.median
    return (median(walls[0]), median(walls[1])), (median(cpus[0]), median(cpus[1]))


def _row(name: str, view_s: float, hand_s: float, view_cpu: float, hand_cpu: float) -> Any:
    return {
        "query": name,
        "view_s": view_s,
        "hand_s": hand_s,
        "ratio": view_s / hand_s,
        "view_cpu_s": view_cpu,
        "hand_cpu_s": hand_cpu,
        "cpu_ratio": view_cpu / hand_cpu,
    }


def run_queries(root: str, repeats: int) -> dict[str, Any]:
    """Time every view next to its hand-written twin; return the result rows."""
    opened_at = time.perf_counter()
    store = Store(root)
    open_seconds = time.perf_counter() - opened_at
    # The first query lists the files and finds the running spans (remembered per
    # partition's files in the user cache, so only a first run pays for it).
    indexed_at = time.perf_counter()
    store.pl("SELECT 1")
    index_seconds = time.perf_counter() - indexed_at
    con = store._con  # the same DuckDB connection and settings for both sides
    hand = _hand_written(store.files)
    day = (FIRST_DAY + timedelta(days=DAYS // 2)).strftime("%Y-%m-%d")
    rows: list[dict[str, Any]] = []
    for name, view_query in VIEW_QUERIES.items():
        params = [day] if "?" in view_query else None
        (view_s, hand_s), (view_cpu, hand_cpu) = _paired_medians(
            lambda q=view_query, p=params: con.execute(q, p).fetchall(),
            lambda q=hand[name], p=params: con.execute(q, p).fetchall(),
            repeats,
        )
        rows.append(_row(name, view_s, hand_s, view_cpu, hand_cpu))
        print(f"  {name}: view {view_s:.3f}s, hand-written {hand_s:.3f}s", flush=True)
    ids = [row[0] for row in con.execute("SELECT trace_id FROM traces USING SAMPLE 100").fetchall()]
    random.Random(3).shuffle(ids)
    store_ids, hand_ids = iter(ids * 4), iter(ids[::-1] * 4)
    all_files = f"({read_spans_sql(store.files)})"
    (lookup_s, hand_lookup_s), (lookup_cpu, hand_lookup_cpu) = _paired_medians(
        lambda: store.trace(next(store_ids)),
        lambda: con.execute(
            f"SELECT * FROM {all_files} WHERE trace_id = ?", [next(hand_ids)]
        ).fetchall(),
        repeats * 4,
    )
    rows.append(_row("trace_lookup", lookup_s, hand_lookup_s, lookup_cpu, hand_lookup_cpu))
    print(f"  trace lookup: Store.trace {lookup_s:.3f}s, hand-written {hand_lookup_s:.3f}s")
    return {
        "open_s": open_seconds,
        "index_s": index_seconds,
        "files": len(store.files),
        "rows": rows,
    }


def store_only_peak_mib(root: str) -> float:
    """Peak RSS (MiB) of a fresh process that opens the store, runs every view once and
    looks up a trace: the memory a CLI or TUI user needs (a child process runs this)."""
    store = Store(root)
    for query in VIEW_QUERIES.values():
        day = (FIRST_DAY + timedelta(days=DAYS // 2)).strftime("%Y-%m-%d")
        store.pl(query, [day] if "?" in query else None)
    store.trace(store.pl("SELECT trace_id FROM traces LIMIT 1").item())
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=DEFAULT_SPANS, help="spans to generate")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats per query")
    parser.add_argument("--store", help="store directory to reuse or create (kept)")
    args = parser.parse_args()
    root = args.store or tempfile.mkdtemp(prefix="spantree-bench-")
    marker = Path(root) / "bench.json"
    if not (marker.exists() and json.loads(marker.read_text())["spans"] == args.spans):
        shutil.rmtree(root, ignore_errors=True)
        print(f"generating {args.spans:,} spans into {root} ...", flush=True)
        started = time.perf_counter()
        child = multiprocessing.get_context("spawn").Process(
            target=generate, args=(root, args.spans)
        )
        child.start()
        child.join()
        if child.exitcode != 0:
            sys.exit(f"generation failed (exit code {child.exitcode})")
        print(f"generated in {time.perf_counter() - started:.0f}s", flush=True)
    # First, while this process is still small: Linux carries the peak RSS of a parent
    # over into a forked child, so a child started after the comparison would report it.
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        store_peak_mib = pool.apply(store_only_peak_mib, (root,))
    print("timing queries (median of repeats) ...", flush=True)
    result = run_queries(root, args.repeats)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print()
    print(
        f"{args.spans:,} spans in {result['files']} files; store opened in"
        f" {result['open_s']:.2f}s, listing + running spans in {result['index_s']:.2f}s"
        " (once per Store and file list)"
    )
    print(
        f"{'query':<16}{'view/Store':>12}{'hand SQL':>12}{'ratio':>7}"
        f"{'view CPU':>12}{'hand CPU':>12}{'ratio':>7}"
    )
    for row in result["rows"]:
        print(
            f"{row['query']:<16}{row['view_s']:>11.3f}s{row['hand_s']:>11.3f}s"
            f"{row['ratio']:>7.2f}{row['view_cpu_s']:>11.3f}s{row['hand_cpu_s']:>11.3f}s"
            f"{row['cpu_ratio']:>7.2f}"
        )
    print(
        f"peak memory (RSS): {store_peak_mib:,.0f} MiB for the views alone (fresh process),"
        f" {peak_mib:,.0f} MiB for the whole comparison (hand-written queries included)"
    )
    # The default size and the full target size keep separate result files.
    name = "query.json" if args.spans == DEFAULT_SPANS else f"query_{args.spans}.json"
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / name).write_text(
        json.dumps(
            {
                "spans": args.spans,
                "repeats": args.repeats,
                "peak_rss_mib": peak_mib,
                "store_only_peak_rss_mib": store_peak_mib,
                **result,
            },
            indent=2,
        )
    )
    if not args.store:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
