"""Cost of one nested span, span_tree vs its peers, in one process run.

Each contender records N nested spans (enter + exit under an open parent) through its
real batching machinery into a sink that discards, and the time includes draining that
pipeline (flush), so work moved to a background thread is still counted. Medians of
several repeats; ratios against span_tree. Also: `import span_tree` time.

    python benchmarks/span_overhead.py [--spans 50000] [--repeats 7]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results" / "span_overhead.json"


class DiscardingSink:
    """A span_tree sink that drops every batch."""

    def export(self, batch: Sequence[Any]) -> None:
        pass

    def force_flush(self, timeout: float) -> bool:
        return True

    def shutdown(self) -> None:
        pass


def bench_span_tree(n: int) -> float:
    import span_tree

    span_tree.configure(
        sinks=[DiscardingSink()],
        console=False,
        jsonl=False,
        store=None,
        capture_logging=False,
        max_queue_size=n + 10,
    )
    span = span_tree.span
    with span("parent"):
        start = time.perf_counter()
        for _ in range(n):
            with span("child"):
                pass
    span_tree.flush(60)
    return time.perf_counter() - start


def bench_span_tree_decorator(n: int) -> float:
    import span_tree

    span_tree.configure(
        sinks=[DiscardingSink()],
        console=False,
        jsonl=False,
        store=None,
        capture_logging=False,
        max_queue_size=n + 10,
    )

    @span_tree.span
    def child() -> None:
        pass

    with span_tree.span("parent"):
        start = time.perf_counter()
        for _ in range(n):
            child()
    span_tree.flush(60)
    return time.perf_counter() - start


def bench_otel(n: int) -> float:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )

    class Discard(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Discard(), max_queue_size=n + 10))
    tracer = provider.get_tracer("bench")
    with tracer.start_as_current_span("parent"):
        start = time.perf_counter()
        for _ in range(n):
            with tracer.start_as_current_span("child"):
                pass
    provider.force_flush()
    elapsed = time.perf_counter() - start
    provider.shutdown()
    return elapsed


def bench_eliot(n: int) -> float:
    import eliot

    messages = 0

    def discard(message: Any) -> None:
        nonlocal messages
        messages += 1

    eliot.add_destinations(discard)
    try:
        with eliot.start_action(action_type="parent"):
            start = time.perf_counter()
            for _ in range(n):
                with eliot.start_action(action_type="child"):
                    pass
            elapsed = time.perf_counter() - start
    finally:
        eliot.remove_destination(discard)
    return elapsed


def bench_logging(n: int) -> float:
    with tempfile.TemporaryDirectory() as folder:
        logger = logging.getLogger("bench.file")
        logger.propagate = False
        handler = logging.FileHandler(os.path.join(folder, "bench.log"))
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        start = time.perf_counter()
        for _ in range(n):
            logger.info("child")
        elapsed = time.perf_counter() - start
        logger.removeHandler(handler)
        handler.close()
    return elapsed


def bench_bare_call(n: int) -> float:
    def child() -> None:
        pass

    start = time.perf_counter()
    for _ in range(n):
        child()
    return time.perf_counter() - start


def import_time_ms(repeats: int) -> float:
    code = "import time; t=time.perf_counter(); import span_tree; print(time.perf_counter()-t)"
    samples = []
    for _ in range(repeats):
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        samples.append(float(out.stdout) * 1000)
    return statistics.median(samples)


def ksuid_packages(repeats: int) -> dict[str, float]:
    """ns per new KSUID string: cyksuid (chosen) vs svix-ksuid, same run."""
    import timeit

    from cyksuid.v2 import ksuid as cyksuid_new
    from ksuid import Ksuid as SvixKsuid

    count = 20_000
    figures = {}
    for label, make in (("cyksuid", cyksuid_new), ("svix-ksuid", SvixKsuid)):
        samples = timeit.repeat(lambda make=make: str(make()), number=count, repeat=repeats)
        figures[label] = statistics.median(samples) / count * 1e9
    return figures


def measure(fn: Callable[[int], float], n: int, repeats: int) -> dict[str, float]:
    fn(min(n, 2_000))  # warm up imports and caches
    samples = [fn(n) / n * 1e6 for _ in range(repeats)]
    return {"median_us": statistics.median(samples), "min_us": min(samples)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()

    contenders: dict[str, Callable[[int], float]] = {
        "span_tree (with)": bench_span_tree,
        "span_tree (decorator)": bench_span_tree_decorator,
        "opentelemetry-sdk": bench_otel,
        "eliot": bench_eliot,
        "logging.info to file": bench_logging,
        "bare function call": bench_bare_call,
    }
    results: dict[str, Any] = {}
    for label, fn in contenders.items():
        results[label] = measure(fn, args.spans, args.repeats)
    base = results["span_tree (with)"]["median_us"]
    imports = import_time_ms(args.repeats)
    ksuids = ksuid_packages(args.repeats)

    python = platform.python_version()
    print(f"{args.spans} nested spans, median of {args.repeats} repeats, Python {python}")
    print(f"{'contender':<24} {'µs/span':>9} {'vs span_tree':>13}")
    for label, figures in results.items():
        print(f"{label:<24} {figures['median_us']:>9.2f} {figures['median_us'] / base:>12.2f}x")
    print(f"import span_tree: {imports:.1f} ms (median, fresh interpreter)")
    print("new KSUID: " + ", ".join(f"{name} {ns:.0f} ns" for name, ns in ksuids.items()))

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "spans": args.spans,
                "repeats": args.repeats,
                "python": platform.python_version(),
                "machine": platform.machine(),
                "cpus": os.cpu_count(),
                "results": results,
                "import_span_tree_ms": imports,
                "ksuid_ns": ksuids,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
