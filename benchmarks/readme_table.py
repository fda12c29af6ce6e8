"""Print the README's performance table from the JSON files in benchmarks/results/.

    python benchmarks/readme_table.py

Each benchmark writes its own JSON; this only reads them, so the README can be refreshed
after any one of them is rerun.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


def load(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def rows() -> list[tuple[str, str, str, str]]:
    table: list[tuple[str, str, str, str]] = []
    overhead = load("span_overhead")
    if overhead:
        figures = overhead["results"]
        ours = figures["span_tree (with)"]["median_us"]
        otel = figures["opentelemetry-sdk"]["median_us"]
        table += [
            (
                "one nested span, end to end (`span_overhead.py`)",
                f"{ours:.2f} µs",
                f"OpenTelemetry SDK {otel:.2f} µs ({otel / ours:.1f}x slower); "
                f"eliot {figures['eliot']['median_us']:.2f} µs; "
                f"logging.info to a file {figures['logging.info to file']['median_us']:.2f} µs",
                "≤ 2 µs, ≥ 8x cheaper than OTel",
            ),
        ]
        parquet = figures.get("span_tree to Parquet files")
        if parquet:
            table.append(
                (
                    "one nested span into Parquet files, end to end (`span_overhead.py`)",
                    f"{parquet['median_us']:.2f} µs",
                    "files written and on disk; CPU time of every thread",
                    "≤ 3 µs",
                )
            )
        logged = figures.get("span_tree span + 1 log record")
        if logged:
            alone = figures["logging.info to file"]["median_us"]
            table.append(
                (
                    "a span holding one `logging.info` record (`span_overhead.py`)",
                    f"{logged['median_us']:.2f} µs ({logged['median_us'] / alone:.2f}x)",
                    f"`logging.info` to a file alone {alone:.2f} µs",
                    "≤ 1.5x `logging.info` alone",
                )
            )
        peer = overhead.get("import_logging_json_threading_ms")
        table.append(
            (
                "`import span_tree`",
                f"{overhead['import_span_tree_ms']:.0f} ms",
                "" if peer is None else f"`import logging, json, threading` {peer:.0f} ms",
                "≤ 30 ms",
            )
        )
    store = load("store_write")
    if store:
        write = store["write"]
        # The Parquet sink given the worker's columns (older results: the same row, named
        # after write_spans, which it measured before the worker handed over columns).
        ours_key = next(
            k
            for k in ("span_tree ParquetSink export_columns", "span_tree write_spans")
            if k in write
        )
        ours = write[ours_key]["spans_per_s"]
        baseline = next(key for key in write if key.startswith("pyarrow from_"))
        base = write[baseline]["spans_per_s"]
        table.append(
            (
                "span columns → Parquet sink → zstd file on disk (`store_write.py`)",
                f"{ours:,.0f} spans/s",
                f"{baseline.removeprefix('pyarrow ')} {base:,.0f} spans/s"
                f" ({write['ratio_vs_baseline']:.2f}x wall,"
                f" {write['cpu_ratio_vs_baseline']:.2f}x CPU)",
                "≥ 600k spans/s, ≤ 1.2x baseline",
            )
        )
        compact = store["compact"]
        table.append(
            (
                f"compact {compact['rows']:,} rows in {compact['files_before']} files",
                f"{compact['seconds']:.1f} s",
                "",
                "10M rows / 1,000 files ≤ 60 s",
            )
        )
        tiny = store.get("compact_tiny_files")
        if tiny:
            table.append(
                (
                    f"compact {tiny['rows']:,} rows in {tiny['files_before']:,} files of 50 rows",
                    f"{tiny['rows_per_s']:,.0f} rows/s",
                    f"{tiny['cpu_ms_per_file']:.1f} ms CPU per file",
                    "",
                )
            )
    query = load("query_10000000") or load("query")
    # store_scale.py measures the same views against the plain query a user would type
    # (cold processes); query.py's in-process comparison stays in its own JSON.
    if query and not load("store_scale"):
        for row in query["rows"]:
            table.append(
                (
                    f"{row['query']} over {query['spans']:,} spans (`query.py`)",
                    f"{row['view_s'] * 1000:,.0f} ms",
                    f"hand-written SQL {row['hand_s'] * 1000:,.0f} ms ({row['ratio']:.2f}x)",
                    "≤ 1.3x hand-written",
                )
            )
    scale = load("store_scale")
    if scale and "A" in scale:
        a = scale["A"]
        for row in a["rows"]:
            if row["query"] == "startup":
                table.append(
                    (
                        "cold start-up of the CLI's imports (`store_scale.py`)",
                        f"{row['spantree_s']:.2f} s, {row['spantree_rss_mib']:.0f} MiB",
                        f"`import duckdb` {row['plain_s']:.2f} s, {row['plain_rss_mib']:.0f} MiB",
                        "",
                    )
                )
                continue
            target = "≤ 1.5x plain" if row["query"] == "count" else "≤ 1.3x plain (no dedup)"
            # The first query on a fresh cache directory also fills the Store's caches
            # (running spans, derived error and root rows): shown beside the warm figure.
            first = row.get("spantree_first_s")
            table.append(
                (
                    f"cold `spantree sql` {row['query']}, {a['spans']:,} spans in {a['files']}"
                    " files (`store_scale.py`)",
                    f"{row['spantree_s']:.2f} s, {row['spantree_rss_mib']:.0f} MiB",
                    f"plain DuckDB glob query {row['plain_s']:.2f} s ({row['ratio']:.2f}x),"
                    f" {row['plain_rss_mib']:.0f} MiB ({row['rss_ratio']:.2f}x)"
                    + (f"; first run (empty cache) {first:.2f} s" if first else ""),
                    f"{target}; RSS ≤ 1.5x",
                )
            )
    if scale and "B" in scale:
        b = scale["B"]
        before, after, rate = b["before"][0], b["after"][0], b["compaction"]
        table += [
            (
                f"cold count, {b['spans']:,} spans in {b['files']:,} small files"
                " (`store_scale.py`)",
                f"{before['spantree_s']:.1f} s",
                f"plain DuckDB {before['plain_s']:.1f} s ({before['ratio']:.2f}x)",
                "≤ 2x plain",
            ),
            (
                f"the same after one compaction pass ({rate['files_out']} files read; the"
                " inputs stay hidden on disk until the grace period ends)",
                f"{after['spantree_s']:.2f} s",
                f"plain glob {after['plain_s']:.2f} s (reads the hidden inputs too);"
                f" compaction {rate['rows_per_s']:,.0f} rows/s",
                "≤ 1 s",
            ),
        ]
    if scale and "C" in scale:
        c = scale["C"]
        stats = next(row for row in c["views"] if row["query"] == "span_stats")
        vs_a = c.get("span_stats_vs_a")
        trace, cold = c["store_trace"], c["cold_trace"]
        table += [
            (
                f"cold `spantree sql` span_stats, {c['spans']:,} spans in {c['files']} files"
                " (`store_scale.py`, every view answered)",
                f"{stats['spantree_s']:.1f} s, {stats['spantree_rss_mib']:.0f} MiB",
                f"{vs_a:.1f}x its time on 10M" if vs_a else "",
                "≤ 12x the 10M time",
            ),
            *(
                (
                    f"cold `spantree sql` {row['query']}, {c['spans']:,} spans (`store_scale.py`)",
                    f"{row['spantree_s']:.1f} s, {row['spantree_rss_mib']:,.0f} MiB",
                    f"plain DuckDB glob query {row['plain_s']:.1f} s ({row['ratio']:.2f}x),"
                    f" {row['plain_rss_mib']:,.0f} MiB ({row['rss_ratio']:.2f}x)"
                    + (
                        f"; first run (empty cache) {row['spantree_first_s']:.1f} s"
                        if row.get("spantree_first_s")
                        else ""
                    ),
                    "answers; RSS ≤ 1.5x plain",
                )
                for row in c["views"]
                if row["query"] in ("error_groups", "dashboard")
            ),
            (
                f"`Store.trace(id)` once open, {c['spans']:,} spans",
                f"{trace['median_ms']:.0f} ms",
                "",
                "≤ 150 ms",
            ),
            (
                f"cold `spantree trace ID`, {c['spans']:,} spans",
                f"{cold['spantree_s']:.2f} s",
                f"plain DuckDB lookup {cold['plain_s']:.2f} s ({cold['ratio']:.2f}x)",
                "≤ 2x plain",
            ),
        ]
    receiver = load("receiver")
    if receiver:
        over_http = [r for r in receiver["results"] if r["setup"].startswith("receiver, 2")]
        over_http = over_http or [
            r for r in receiver["results"] if r["setup"].startswith("receiver")
        ]
        best = max(over_http, key=lambda r: r["spans_per_s"])
        table.append(
            (
                "receiver, client → HTTP → Parquet (`receiver.py`)",
                f"{best['spans_per_s']:,.0f} spans/s",
                f"{best['setup']}, {best['clients']} clients, p99 {best['p99_ms']:.0f} ms,"
                f" {best['spans_per_cpu_s']:,.0f} spans per receiver CPU-s",
                "≥ 100k spans/s with 2 workers",
            )
        )
    otlp = load("otlp")
    if otlp:
        native, proto = otlp["results"][0], otlp["results"][1]
        table.append(
            (
                "OTLP/HTTP protobuf → receiver → Parquet (`otlp.py`)",
                f"{proto['spans_per_s']:,.0f} spans/s",
                f"native JSON path {native['spans_per_s']:,.0f} spans/s in the same run "
                f"({proto['ratio_to_native']:.2f}x; per receiver CPU-s "
                f"{proto['cpu_ratio_to_native']:.2f}x), {proto['workers']} workers, "
                f"load average {otlp['load_average']:.0f}",
                "≥ 100k spans/s, ≥ 0.8x native",
            )
        )
    busy = load("busy_loop")
    if busy:
        one, many, dropping = busy["cases"]
        table.append(
            (
                f"a batch job in a tight loop, {one['spans']:,} spans into a Parquet sink, "
                "default settings (`busy_loop.py`)",
                f"{one['stored']:,} stored, {one['dropped']:,} dropped",
                f"{many['threads']} threads: {many['stored']:,} stored, "
                f"{many['dropped']:,} dropped; with on_full='drop' "
                f"{dropping['dropped']:,} dropped; a queued span holds "
                f"{busy['queued_span_bytes']:,.0f} bytes",
                "every span stored",
            )
        )
    tui = load("tui")
    if tui:
        # "dashboard" in results written before the screen was named for what it lists.
        for index, first in enumerate(tui.get("span_names") or tui["dashboard"]):
            detail = f"Store calls alone {first['store_only_s']:.2f} s"
            if index == 0:
                detail += (
                    f"; key press in a {tui['trace']['spans']:,}-span trace: "
                    f"{tui['trace']['key_median_ms']:.0f} ms median"
                )
            table.append(
                (
                    f"TUI span names screen on {tui['spans']:,} spans ({first['range']})"
                    " (`tui.py`)",
                    f"{first['tui_s']:.2f} s",
                    detail,
                    "≤ 5 s" if first["range"] == "all" else "≤ 2 s",
                )
            )
    return table


def main() -> None:
    print("| what | span-tree | peer / detail | target |")
    print("|---|---|---|---|")
    for what, ours, peer, target in rows():
        print(f"| {what} | {ours} | {peer} | {target} |")


if __name__ == "__main__":
    main()
