"""TUI responsiveness, measured with Textual's pilot on real stores.

1. Time to a filled span names screen (the first screen) on a big store (the store of
   ``benchmarks/query.py``: ~200 span names, 30 days x 3 namespaces), from app start to
   rows on screen, for the default range (24h), 7 days and everything. Peer in the same
   run: the same ``Store`` calls without any UI (open + ``span_names`` +
   ``span_timeline``), and the CLI's ``Store.dashboard()`` view (root names), so the
   UI's own overhead shows as a ratio.
2. One trace of 10,000 spans: time to open it (find trace -> tree on screen) and the
   latency of each key press moving through it (down, page down, left/right, end/home),
   animations off. Peer in the same run: the same keys on a trace of 101 spans, so the
   ratio shows what the trace's size costs.
3. Writes ``docs/tui.svg`` (span names) and ``docs/tui-trace.svg`` (a failed trace) from a
   ``spantree demo`` store, for the README.

Medians of several repeats; results in ``benchmarks/results/tui.json``. Target: the
span names screen in under 2 s on the 10M-span store.

    python benchmarks/tui.py                                  # 1M spans (a few minutes)
    python benchmarks/tui.py --spans 10000000 --store DIR     # the full target size
    python benchmarks/tui.py --store DIR                      # reuse a query.py store
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from query import DAYS, FIRST_DAY, generate  # the same store as the query benchmark

from span_tree._ids import trace_id_from_w3c
from span_tree._record import SCHEMA_VERSION, FinishedSpan
from span_tree.analytics import Store
from span_tree.storage import open_store, write_spans
from span_tree.tui import SpanTreeApp, StoreSource
from span_tree.tui._names import SPARK_BUCKETS, NamesScreen
from span_tree.tui._source import FilterChoices
from span_tree.tui._trace import SpanTree, TraceScreen

RESULTS = Path(__file__).parent / "results" / "tui.json"
DOCS = Path(__file__).parent.parent / "docs"
SIZE = (120, 36)
# "Now" for the big store: just after its last day, so "the last 24h" is its last day.
NOW = FIRST_DAY + timedelta(days=DAYS)
NOW_US = int(NOW.timestamp() * 1_000_000)
NAMESPACE = "shop"


def _app(
    root: str, namespace: str | None, now_us: int, state: Path, time_range: str = "24h"
) -> SpanTreeApp:
    return SpanTreeApp(
        StoreSource.from_url(root),
        namespace=namespace,
        now=lambda: now_us,
        state_path=state,
        time_range=time_range,
    )


async def _until(pilot: Any, ready: Callable[[], bool], timeout: float = 120) -> None:
    deadline = time.perf_counter() + timeout
    while not ready():
        if time.perf_counter() > deadline:
            raise TimeoutError("the TUI did not get there in time")
        await pilot.pause(0.005)


def _names_ready(app: SpanTreeApp) -> bool:
    screen = app.screen
    return isinstance(screen, NamesScreen) and not screen.loading and bool(screen.rows)


async def _time_names(root: str, time_range: str, state: Path) -> float:
    """Seconds from app start to a filled span names screen with ``time_range`` as the default."""
    app = _app(root, NAMESPACE, NOW_US, state, time_range)
    started = time.perf_counter()
    async with app.run_test(size=SIZE) as pilot:
        await _until(pilot, lambda: _names_ready(app))
        return time.perf_counter() - started


def _time_headless(root: str, time_range: str) -> float:
    """The same Store work without a UI: open, span_names, span_timeline."""
    selection = FilterChoices(time_range=time_range).for_store(NAMESPACE, NOW_US)
    started = time.perf_counter()
    with Store(root, namespace=NAMESPACE) as store:
        store.span_names(selection)
        store.span_timeline(selection, buckets=SPARK_BUCKETS, now=NOW)
    return time.perf_counter() - started


def _time_cli_dashboard(root: str) -> float:
    """The CLI's dashboard (one row per root name, all time) on a freshly opened store."""
    started = time.perf_counter()
    with Store(root, namespace=NAMESPACE) as store:
        store.dashboard(namespace=NAMESPACE)
    return time.perf_counter() - started


def _median(values: list[float]) -> float:
    return statistics.median(values)


def bench_span_names(
    root: str, repeats: int, ranges: list[str], state: Path
) -> list[dict[str, Any]]:
    rows = []
    for time_range in ranges:
        ui = [asyncio.run(_time_names(root, time_range, state)) for _ in range(repeats)]
        headless = [_time_headless(root, time_range) for _ in range(repeats)]
        rows.append(
            {
                "range": time_range,
                "tui_s": _median(ui),
                "store_only_s": _median(headless),
                "ratio": _median(ui) / _median(headless),
            }
        )
        print(f"  span names {time_range}: {rows[-1]['tui_s']:.2f}s", flush=True)
    return rows


# -- one 10,000-span trace ---------------------------------------------------------------


def huge_trace(spans: int) -> list[FinishedSpan]:
    """A root, 100 stages, the rest spread under the stages (like a bulk import)."""
    start = NOW_US - 600_000_000
    trace = trace_id_from_w3c("ab" * 16, start / 1e6)

    def span(index: int, parent: str | None, name: str, offset: int, duration: int) -> FinishedSpan:
        return FinishedSpan(
            namespace="huge",
            date=_date(start),
            trace_id=trace,
            span_id=f"{index:016x}",
            parent_id=parent,
            seq=index,
            name=name,
            kind="internal",
            status="succeeded",
            level="INFO",
            start_time=start + offset,
            end_time=start + offset + duration,
            duration_us=duration,
            file="bulk.py",
            line=10,
            function=name,
            app="bulk",
            app_version="1",
            host="h",
            pid=1,
            thread="MainThread",
            task=None,
            tags={"env": "prod"},
            attributes={"row": index},
            error_type=None,
            error_message=None,
            error_traceback=None,
            handled_errors=(),
            events=(),
            links=(),
            ref_src=(),
            ref_dest=(),
            written_at=None,
            schema_version=SCHEMA_VERSION,
        )

    records = [span(0, None, "bulk.import", 0, spans * 100 + 10_000)]
    records += [span(1 + s, f"{0:016x}", f"stage.{s:03d}", s * 100, 5_000) for s in range(100)]
    for index in range(101, spans):
        stage = 1 + index % 100
        records.append(span(index, f"{stage:016x}", "row.insert", index * 100, 90 + index % 50))
    return records


def _date(micros: int) -> str:
    return datetime.fromtimestamp(micros / 1e6, tz=UTC).strftime("%Y-%m-%d")


async def _trace_timings(root: str, trace_id: str, state: Path) -> dict[str, Any]:
    from textual.widgets import Input

    app = _app(root, "huge", NOW_US, state)
    # Scrolling animations would be timed as latency; a key's own work is what counts.
    app.animation_level = "none"
    async with app.run_test(size=SIZE) as pilot:
        await _until(pilot, lambda: _names_ready(app))
        await pilot.press("t")
        await _until(pilot, lambda: bool(app.screen.query(Input)))
        app.screen.query_one(Input).value = trace_id
        started = time.perf_counter()
        await pilot.press("enter")
        await _until(pilot, lambda: isinstance(app.screen, TraceScreen))
        tree = app.screen.query_one(SpanTree)
        await _until(pilot, lambda: tree.cursor_node is not None)
        await pilot.pause()
        open_s = time.perf_counter() - started
        keys: dict[str, list[float]] = {}
        plan = (
            ["down"] * 100
            + ["right", "right"]  # open the stage under the cursor, go to its first child
            + ["down"] * 100
            + ["pagedown"] * 20
            + ["left", "left"]
            + ["pageup"] * 20
            + ["end", "home"] * 5
        )
        for key in plan:
            began = time.perf_counter()
            await pilot.press(key)
            keys.setdefault(key, []).append(time.perf_counter() - began)
        lines = tree.last_line + 1
    every = [value for values in keys.values() for value in values]
    return {
        "open_s": open_s,
        "visible_lines_after": lines,
        "key_median_ms": _median(every) * 1000,
        "key_p95_ms": sorted(every)[int(len(every) * 0.95)] * 1000,
        "per_key_median_ms": {key: _median(values) * 1000 for key, values in keys.items()},
    }


def bench_trace(spans: int, repeats: int, state: Path) -> dict[str, Any]:
    """Open a trace of ``spans`` spans and move through it; medians of ``repeats`` runs."""
    root = tempfile.mkdtemp(prefix="spantree-tui-trace-")
    try:
        records = huge_trace(spans)
        write_spans(open_store(root), records)
        runs = [
            asyncio.run(_trace_timings(root, records[0].trace_id, state)) for _ in range(repeats)
        ]
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return {
        "spans": spans,
        "open_s": _median([run["open_s"] for run in runs]),
        "key_median_ms": _median([run["key_median_ms"] for run in runs]),
        "key_p95_ms": _median([run["key_p95_ms"] for run in runs]),
        "per_key_median_ms": {
            key: _median([run["per_key_median_ms"][key] for run in runs])
            for key in runs[0]["per_key_median_ms"]
        },
    }


# -- screenshots for the README ------------------------------------------------------------


async def _screenshots(root: str, state: Path) -> None:
    from span_tree.tui._traces import SpanListScreen

    app = _app(root, "demo", time.time_ns() // 1000, state)
    async with app.run_test(size=(120, 32)) as pilot:
        await _until(pilot, lambda: _names_ready(app))
        await pilot.pause(0.2)
        DOCS.mkdir(exist_ok=True)
        app.save_screenshot("tui.svg", str(DOCS))
        await pilot.press("e")
        await _until(pilot, lambda: _names_ready(app))
        screen = app.screen
        assert isinstance(screen, NamesScreen)
        await pilot.press("o", "o", "o")  # sort by name
        names = sorted(row.name for row in screen.rows)
        wanted = next((i for i, name in enumerate(names) if name.startswith("POST")), 0)
        await pilot.press(*["down"] * wanted, "enter")
        await _until(
            pilot, lambda: isinstance(app.screen, SpanListScreen) and bool(app.screen.rows)
        )
        await pilot.press("enter")
        await _until(pilot, lambda: isinstance(app.screen, TraceScreen))
        await pilot.pause(0.2)
        app.save_screenshot("tui-trace.svg", str(DOCS))


def screenshots(state: Path) -> None:
    root = tempfile.mkdtemp(prefix="spantree-tui-demo-")
    try:
        subprocess.run(
            [
                sys.executable,
                "-c",
                "from span_tree.cli import main; main()",
                "demo",
                "--store",
                root,
            ],
            check=True,
            capture_output=True,
        )
        asyncio.run(_screenshots(root, state))
    finally:
        shutil.rmtree(root, ignore_errors=True)


# -- main ------------------------------------------------------------------------------------


def ensure_store(root: str, spans: int) -> None:
    marker = Path(root) / "bench.json"
    if marker.exists() and json.loads(marker.read_text())["spans"] == spans:
        return
    shutil.rmtree(root, ignore_errors=True)
    print(f"generating {spans:,} spans into {root} ...", flush=True)
    child = multiprocessing.get_context("spawn").Process(target=generate, args=(root, spans))
    child.start()
    child.join()
    if child.exitcode != 0:
        sys.exit(f"generation failed (exit code {child.exitcode})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=1_000_000, help="spans in the big store")
    parser.add_argument("--store", help="big store directory to reuse or create (kept)")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats")
    parser.add_argument("--trace-spans", type=int, default=10_000, help="spans of the big trace")
    parser.add_argument(
        "--ranges", default="24h,7d,all", help="span names time ranges to time (comma list)"
    )
    parser.add_argument("--no-screenshots", action="store_true", help="skip docs/tui*.svg")
    args = parser.parse_args()
    root = args.store or tempfile.mkdtemp(prefix="spantree-bench-")
    if args.store and (Path(root) / "bench.json").exists():
        args.spans = json.loads((Path(root) / "bench.json").read_text())["spans"]
    ensure_store(root, args.spans)
    state = Path(tempfile.mkdtemp(prefix="spantree-tui-state-")) / "tui.json"
    print("timing the span names screen ...", flush=True)
    span_names = bench_span_names(root, args.repeats, args.ranges.split(","), state)
    cli = _median([_time_cli_dashboard(root) for _ in range(args.repeats)])
    print("timing a big trace ...", flush=True)
    trace = bench_trace(args.trace_spans, args.repeats, state)
    small = bench_trace(101, args.repeats, state)
    if not args.no_screenshots:
        screenshots(state)
    print()
    where = f"namespace {NAMESPACE!r}, {SIZE[0]}x{SIZE[1]}"
    print(f"span names screen on {args.spans:,} spans ({where})")
    print(f"{'range':<8}{'TUI':>10}{'Store only':>12}{'ratio':>8}")
    for row in span_names:
        print(
            f"{row['range']:<8}{row['tui_s']:>9.2f}s{row['store_only_s']:>11.2f}s{row['ratio']:>8.2f}"
        )
    print(f"CLI dashboard view (root names, all time): {cli:.2f}s")
    print()
    trace_spans = trace["spans"]
    print(f"{'trace':<22}{f'{trace_spans:,} spans':>14}{'101 spans':>12}{'ratio':>8}")
    for label, big, peer in [
        ("open (find -> tree)", trace["open_s"] * 1000, small["open_s"] * 1000),
        ("key median", trace["key_median_ms"], small["key_median_ms"]),
        ("key p95", trace["key_p95_ms"], small["key_p95_ms"]),
        *[
            (f"  {key}", value, small["per_key_median_ms"][key])
            for key, value in trace["per_key_median_ms"].items()
        ],
    ]:
        print(f"{label:<22}{big:>11.1f} ms{peer:>9.1f} ms{big / peer:>8.2f}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "spans": args.spans,
                "repeats": args.repeats,
                "span_names": span_names,
                "cli_dashboard_s": cli,
                "trace": trace,
                "small_trace": small,
            },
            indent=2,
        )
    )
    if not args.store:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
