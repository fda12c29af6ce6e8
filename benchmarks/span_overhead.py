"""Cost of one nested span, span_tree vs its peers, in one process run.

Each contender records N nested spans (enter + exit under an open parent) through its
real batching machinery into a sink that discards, and the time includes draining that
pipeline (flush), so work moved to a background thread is still counted. Times are the
process's CPU time (every thread: the caller's and the worker's), so other programs on
a shared machine inflate them less than wall time; the repeats go round the contenders
in turn (interleaved), and each figure is the median of its repeats.

More rows: span_tree into its real Parquet sink (files on disk, end to end), a span
holding one `logging` record against `logging.info` to a file alone, and `import
span_tree` against `import logging, json, threading` (fresh interpreters, bytecode
cached first, CPU time).

    python benchmarks/span_overhead.py [--spans 50000] [--repeats 7]   # about 2 minutes
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results" / "span_overhead.json"
_clock = time.process_time  # CPU time of every thread of this process


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
        start = _clock()
        for _ in range(n):
            with span("child"):
                pass
    span_tree.flush(60)
    return _clock() - start


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
        start = _clock()
        for _ in range(n):
            child()
    span_tree.flush(60)
    return _clock() - start


def bench_span_tree_parquet(n: int) -> float:
    """Nested spans into the real Parquet sink: files written and on disk at the end."""
    import span_tree
    from span_tree.sinks.parquet import ParquetSink

    folder = tempfile.mkdtemp(prefix="span_overhead_")
    try:
        span_tree.configure(
            sinks=[ParquetSink(folder, max_rows=max(n, 1_000))],
            console=False,
            jsonl=False,
            store=None,
            capture_logging=False,
            max_queue_size=n + 10,
        )
        span = span_tree.span
        with span("parent"):
            start = _clock()
            for _ in range(n):
                with span("child"):
                    pass
        span_tree.flush(120)
        elapsed = _clock() - start
        span_tree.shutdown(60)
        if not list(Path(folder).rglob("*.parquet")):
            raise RuntimeError("the Parquet sink wrote no file")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return elapsed


def _file_logger(folder: str) -> tuple[logging.Logger, logging.Handler]:
    logger = logging.getLogger("bench.file")
    logger.propagate = False
    handler = logging.FileHandler(os.path.join(folder, "bench.log"))
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    return logger, handler


class EventCheckingSink(DiscardingSink):
    """Discards batches, after noting whether the first span of the first one had events."""

    def __init__(self) -> None:
        self.first_events: int | None = None

    def export(self, batch: Sequence[Any]) -> None:
        if self.first_events is None and batch:
            self.first_events = len(batch[0].events)


def bench_span_tree_log(n: int) -> float:
    """Each nested span holds one `logging.info` record, captured as the span's event.

    The logger propagates to the root logger, where span_tree's handler turns records
    emitted inside a span into its events (the log line lives in the trace, not a file).
    """
    import span_tree

    sink = EventCheckingSink()
    span_tree.configure(
        sinks=[sink],
        console=False,
        jsonl=False,
        store=None,
        capture_logging=True,
        max_queue_size=n + 10,
    )
    logger = logging.getLogger("bench.events")
    logger.setLevel(logging.INFO)
    span = span_tree.span
    try:
        with span("parent"):
            start = _clock()
            for _ in range(n):
                with span("child"):
                    logger.info("child")
        span_tree.flush(60)
        elapsed = _clock() - start
    finally:
        span_tree.configure(
            sinks=[DiscardingSink()], console=False, jsonl=False, store=None, capture_logging=False
        )
    if sink.first_events != 1:
        raise RuntimeError(f"the log record was not captured: {sink.first_events} events")
    return elapsed


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
        start = _clock()
        for _ in range(n):
            with tracer.start_as_current_span("child"):
                pass
    provider.force_flush()
    elapsed = _clock() - start
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
            start = _clock()
            for _ in range(n):
                with eliot.start_action(action_type="child"):
                    pass
            elapsed = _clock() - start
    finally:
        eliot.remove_destination(discard)
    return elapsed


def bench_logging(n: int) -> float:
    with tempfile.TemporaryDirectory() as folder:
        logger, handler = _file_logger(folder)
        start = _clock()
        for _ in range(n):
            logger.info("child")
        elapsed = _clock() - start
        logger.removeHandler(handler)
        handler.close()
    return elapsed


def bench_bare_call(n: int) -> float:
    def child() -> None:
        pass

    start = _clock()
    for _ in range(n):
        child()
    return _clock() - start


IMPORTS = {
    "span_tree": "import span_tree",
    "logging, json, threading": "import logging, json, threading",
}


def import_times_ms(repeats: int) -> dict[str, float]:
    """CPU ms of each import in a fresh interpreter, interleaved; medians.

    A first run with bytecode writing allowed caches the .pyc files, as an installed
    package has them (PYTHONDONTWRITEBYTECODE would make every run compile from source).
    """
    code = "import time; t=time.process_time(); {}; print(time.process_time()-t)"
    cached = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    for statement in IMPORTS.values():
        subprocess.run([sys.executable, "-c", statement], env=cached, check=True)
    samples: dict[str, list[float]] = {label: [] for label in IMPORTS}
    for _ in range(repeats):
        for label, statement in IMPORTS.items():
            out = subprocess.run(
                [sys.executable, "-c", code.format(statement)],
                capture_output=True,
                text=True,
                check=True,
            )
            samples[label].append(float(out.stdout) * 1000)
    return {label: statistics.median(values) for label, values in samples.items()}


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


def measure(
    contenders: dict[str, Callable[[int], float]], n: int, repeats: int
) -> dict[str, dict[str, float]]:
    """µs per span of each contender: repeats taken in turn (interleaved), medians."""
    for fn in contenders.values():
        fn(min(n, 2_000))  # warm up imports and caches
    samples: dict[str, list[float]] = {label: [] for label in contenders}
    for _ in range(repeats):
        for label, fn in contenders.items():
            samples[label].append(fn(n) / n * 1e6)
    return {
        label: {"median_us": statistics.median(values), "min_us": min(values)}
        for label, values in samples.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", type=Path, default=RESULTS, help="where the JSON goes")
    args = parser.parse_args()

    contenders: dict[str, Callable[[int], float]] = {
        "span_tree (with)": bench_span_tree,
        "span_tree (decorator)": bench_span_tree_decorator,
        "span_tree to Parquet files": bench_span_tree_parquet,
        "span_tree span + 1 log record": bench_span_tree_log,
        "opentelemetry-sdk": bench_otel,
        "eliot": bench_eliot,
        "logging.info to file": bench_logging,
        "bare function call": bench_bare_call,
    }
    results: dict[str, Any] = measure(contenders, args.spans, args.repeats)
    base = results["span_tree (with)"]["median_us"]
    imports = import_times_ms(args.repeats)
    ksuids = ksuid_packages(args.repeats)

    python = platform.python_version()
    print(
        f"{args.spans} nested spans, CPU time, median of {args.repeats} interleaved repeats, "
        f"Python {python}"
    )
    print(f"{'contender':<30} {'µs/span':>9} {'vs span_tree':>13}")
    for label, figures in results.items():
        print(f"{label:<30} {figures['median_us']:>9.2f} {figures['median_us'] / base:>12.2f}x")
    logged = results["span_tree span + 1 log record"]["median_us"]
    alone = results["logging.info to file"]["median_us"]
    print(f"span + 1 log record vs logging.info to a file alone: {logged / alone:.2f}x")
    print(
        "import (CPU ms, median, fresh interpreter): "
        + ", ".join(f"{label} {ms:.1f}" for label, ms in imports.items())
    )
    print("new KSUID: " + ", ".join(f"{name} {ns:.0f} ns" for name, ns in ksuids.items()))

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "spans": args.spans,
                "repeats": args.repeats,
                "python": platform.python_version(),
                "machine": platform.machine(),
                "cpus": os.cpu_count(),
                "results": results,
                "clock": "process CPU time",
                "import_span_tree_ms": imports["span_tree"],
                "import_logging_json_threading_ms": imports["logging, json, threading"],
                "ksuid_ns": ksuids,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
