"""A batch job in a tight loop: do all spans reach the store, and what does a queued span cost?

Runs each case in a fresh process with default settings (`on_full="block"`) and a real
Parquet sink, then counts the rows on disk. Also measures the memory one queued span
holds (live spans waiting for a stuck sink), which bounds the queue's memory.

Each case's stdout is a pipe (the default JSON-lines sink writes every span there, as
in a container): this script drains it in chunks and counts its lines, without keeping
it. Peak memory is the child's own high-water mark (``VmHWM``): ``ru_maxrss`` is kept
across fork and exec, so a child started by a process that had read 1.5 GB of an
earlier case's output reported that process's 4.4 GB as its own.

    python benchmarks/busy_loop.py [--spans 2000000] [--threads 4]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import IO, Any

RESULTS = Path(__file__).parent / "results" / "busy_loop.json"

PRODUCE = """
import json, resource, sys, threading, time
import span_tree
from span_tree.sinks.parquet import ParquetSink

store, spans, threads, on_full = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
result_path = sys.argv[5]

def peak_rss_mb():
    # This process's own high-water mark: ru_maxrss would include the parent's RSS at fork.
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

span_tree.configure(sinks=[ParquetSink(store, max_rows=20_000)], on_full=on_full)

def produce(count):
    for _ in range(count // 10):  # traces of 10 spans: a root and 9 children
        with span_tree.span("root"):
            for _ in range(9):
                with span_tree.span("child"):
                    pass

started = time.perf_counter()
workers = [threading.Thread(target=produce, args=(spans // threads,)) for _ in range(threads)]
for worker in workers:
    worker.start()
for worker in workers:
    worker.join()
produced = time.perf_counter() - started
span_tree.flush(600)
stats = span_tree.stats()
with open(result_path, "w") as out:
    json.dump({
        "produce_s": produced,
        "total_s": time.perf_counter() - started,
        "dropped": stats["dropped"],
        "blocked": stats["blocked"],
        "peak_rss_mb": peak_rss_mb(),
    }, out)
"""

QUEUED_SPAN_BYTES = """
import threading, tracemalloc
import span_tree

class StuckSink:
    def __init__(self): self.release = threading.Event()
    def export(self, batch): self.release.wait()
    def force_flush(self, timeout): return True
    def shutdown(self): pass

sink = StuckSink()
span_tree.configure(sinks=[sink], console=False, jsonl=False, store=None, max_queue_size=200_000)
with span_tree.span("warm-up"):
    pass
tracemalloc.start()
before = tracemalloc.get_traced_memory()[0]
with span_tree.span("root", order=1):
    for i in range(50_000):
        with span_tree.span("child", item=i):
            pass
after = tracemalloc.get_traced_memory()[0]
print((after - before) / 50_001)
sink.release.set()
"""


def _drain(stream: IO[bytes], counts: dict[str, int], tail: list[bytes]) -> None:
    """Read a child's pipe to its end in chunks: count bytes and lines, keep the tail."""
    while chunk := stream.read(1 << 20):
        counts["bytes"] += len(chunk)
        counts["lines"] += chunk.count(b"\n")
        tail[:] = [(tail[0] if tail else b"")[-4096:] + chunk[-4096:]]


def run_case(spans: int, threads: int, on_full: str) -> dict[str, Any]:
    import duckdb

    with tempfile.TemporaryDirectory() as store, tempfile.TemporaryDirectory() as scratch:
        result_path = Path(scratch) / "result.json"
        child = subprocess.Popen(
            [
                sys.executable,
                "-c",
                PRODUCE,
                store,
                str(spans),
                str(threads),
                on_full,
                str(result_path),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        out_counts = {"bytes": 0, "lines": 0}
        err_counts = {"bytes": 0, "lines": 0}
        out_tail: list[bytes] = []
        err_tail: list[bytes] = []
        readers = [
            threading.Thread(target=_drain, args=(child.stdout, out_counts, out_tail)),
            threading.Thread(target=_drain, args=(child.stderr, err_counts, err_tail)),
        ]
        for reader in readers:
            reader.start()
        for reader in readers:
            reader.join()
        if child.wait() != 0:
            raise RuntimeError(b"".join(err_tail).decode(errors="replace"))
        result: dict[str, Any] = json.loads(result_path.read_text())
        result["stdout_lines"] = out_counts["lines"]
        files = str(Path(store) / "**" / "*.parquet")
        result["stored"] = duckdb.sql(f"select count(*) from read_parquet('{files}')").fetchall()[
            0
        ][0]
    result.update(spans=spans, threads=threads, on_full=on_full)
    result["spans_per_s"] = spans / result["total_s"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=2_000_000)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--out", type=Path, default=RESULTS, help="where the JSON goes")
    args = parser.parse_args()
    cases = [
        run_case(args.spans, 1, "block"),
        run_case(args.spans, args.threads, "block"),
        run_case(args.spans, args.threads, "drop"),
    ]
    queued = subprocess.run(
        [sys.executable, "-c", QUEUED_SPAN_BYTES], capture_output=True, text=True, check=True
    ).stdout
    bytes_per_span = float(queued.strip().splitlines()[-1])
    print(
        f"{'case':<28} {'stored':>10} {'dropped':>9} {'waits':>7} {'spans/s':>9} "
        f"{'peak MB':>7} {'jsonl lines':>11}"
    )
    for case in cases:
        label = f"{case['threads']} thread(s), on_full={case['on_full']}"
        print(
            f"{label:<28} {case['stored']:>10,} {case['dropped']:>9,} {case['blocked']:>7,} "
            f"{case['spans_per_s']:>9,.0f} {case['peak_rss_mb']:>7.0f} "
            f"{case['stdout_lines']:>11,}"
        )
    print(f"memory per queued span (a small span with one attribute): {bytes_per_span:,.0f} bytes")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps({"cases": cases, "queued_span_bytes": bytes_per_span}, indent=2) + "\n"
    )


if __name__ == "__main__":
    main()
