"""The views on DuckDB and on Spark local mode: wall time of each view, same files, one run.

Reads an existing store (``--store``, read-only) or generates one with
``benchmarks/query.py``'s generator (span_tree's own writer). For every view, times
``select count(*) from <view>`` on ``span_tree.analytics.Store`` (DuckDB) and on a local
SparkSession with ``span_tree.analytics.spark.register_views``: the count makes each
engine compute every row of the view without shipping it to Python, and the two counts
must agree. No target: on a 2-core machine Spark's planning and shuffles cost more than
they parallelise; the point is that the answers match and the figures are known.

    python benchmarks/spark.py --store /path/to/store       # reuse a store
    python benchmarks/spark.py --spans 10000000             # generate under --data
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time
from pathlib import Path
from typing import Any

from span_tree.analytics import VIEW_NAMES, Store

RESULTS_DIR = Path(__file__).parent / "results"


def _generate(root: str, spans: int) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from query import generate  # the query benchmark's realistic store

    generate(root, spans)


def _timed(run: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    value = run()
    return value, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", help="an existing store to read (not modified)")
    parser.add_argument("--spans", type=int, default=10_000_000, help="spans to generate")
    parser.add_argument("--data", default="/work/data/spark", help="where to generate")
    parser.add_argument("--cores", default="2", help="Spark local[cores]")
    parser.add_argument("--driver-memory", default="6g", help="Spark driver memory")
    args = parser.parse_args()

    root = args.store
    if root is None:
        root = str(Path(args.data) / f"store_{args.spans}")
        marker = Path(root) / "bench.json"
        if not marker.exists():
            print(f"generating {args.spans:,} spans into {root} ...", flush=True)
            child = multiprocessing.get_context("spawn").Process(
                target=_generate, args=(root, args.spans)
            )
            child.start()
            child.join()
            if child.exitcode != 0:
                sys.exit(f"generation failed (exit code {child.exitcode})")

    from span_tree.analytics.spark import local_session, register_views

    store, duck_open_s = _timed(lambda: Store(root))
    spark, spark_start_s = _timed(
        lambda: local_session(
            app_name="span-tree-bench",
            cores=args.cores,
            config={"spark.driver.memory": args.driver_memory},
        )
    )
    registered, spark_register_s = _timed(lambda: register_views(spark, root))
    print(
        f"{len(store.files):,} files; DuckDB store opened in {duck_open_s:.1f}s; Spark session"
        f" started in {spark_start_s:.1f}s, views registered in {spark_register_s:.1f}s",
        flush=True,
    )
    rows = []
    print(f"{'view':<18}{'rows':>12}{'DuckDB':>10}{'Spark':>10}{'ratio':>8}", flush=True)
    for view in VIEW_NAMES:
        query = f"select count(*) from {view}"
        duck_rows, duck_s = _timed(lambda q=query: store.sql(q).fetchall()[0][0])
        spark_rows, spark_s = _timed(lambda q=query: spark.sql(q).collect()[0][0])
        rows.append(
            {
                "view": view,
                "rows": duck_rows,
                "spark_rows": spark_rows,
                "same_count": duck_rows == spark_rows,
                "duckdb_s": round(duck_s, 3),
                "spark_s": round(spark_s, 3),
                "ratio": round(spark_s / duck_s, 2) if duck_s else None,
            }
        )
        same = "" if duck_rows == spark_rows else f"  MISMATCH: Spark {spark_rows:,}"
        print(
            f"{view:<18}{duck_rows:>12,}{duck_s:>9.2f}s{spark_s:>9.2f}s"
            f"{spark_s / duck_s if duck_s else 0:>8.1f}{same}",
            flush=True,
        )
    spark.stop()
    spans = next(row["rows"] for row in rows if row["view"] == "spans")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / "spark.json").write_text(
        json.dumps(
            {
                "store": root,
                "spans": spans,
                "files": len(registered.files),
                "cpu_count": os.cpu_count(),
                "spark_cores": args.cores,
                "duckdb_open_s": round(duck_open_s, 2),
                "spark_start_s": round(spark_start_s, 2),
                "spark_register_s": round(spark_register_s, 2),
                "views": rows,
            },
            indent=2,
        )
        + "\n"
    )
    if not all(row["same_count"] for row in rows):
        sys.exit("the engines disagree on some view's row count")


if __name__ == "__main__":
    main()
