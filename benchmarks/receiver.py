"""Receiver throughput: spans/s accepted end to end (client -> HTTP -> Parquet on disk).

A `spantree serve` child process on loopback writes to a fresh store; 1, 4 and 16
client threads, each on one keep-alive HTTP/1.1 connection (the standard library's
http.client: a lean sender's cost, not httpx's), post pre-encoded gzip bodies of 1,000
realistic spans (what HttpSink sends) as fast as the receiver answers 202. Peers in the
same run: the same bodies written in-process without HTTP (the ceiling: parse + validate
+ write only), and the receiver with 2 worker processes. Medians of several repeats;
p99 request latency. Also a stage profile of the receiver's hot path (per 1,000 spans),
and spans per CPU-second of the receiver's own processes (psutil), which stays
meaningful when other work shares the machine.

    python benchmarks/receiver.py [--requests 40] [--repeats 3] [--batch 1000]   # ~1 min quiet
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, closing
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

RESULTS = Path(__file__).parent / "results" / "receiver.json"


def realistic_spans(count: int) -> list[dict[str, Any]]:
    """``count`` span records from real spans: roots with children, attributes, log events."""
    import span_tree
    from span_tree._record import span_to_json_dict
    from span_tree.testing import capture_spans

    span_tree.configure(console=False, jsonl=False, store=None, sinks=[], schedule_delay=60)
    log = logging.getLogger("bench.app")
    records: list[dict[str, Any]] = []
    with capture_spans() as spans:
        while len(spans) < count:
            with span_tree.span("handle_request", route="/orders", user_id=42):
                for step in range(4):
                    with span_tree.span("db.query", table="orders", rows=step * 10):
                        log.info("fetched %d rows", step * 10)
    records = [span_to_json_dict(span) for span in spans[:count]]
    span_tree.shutdown(timeout=1)
    return records


def gzip_body(spans: list[dict[str, Any]]) -> bytes:
    """The request body HttpSink would send."""
    import orjson

    return gzip.compress(orjson.dumps({"tags": {}, "spans": spans}), compresslevel=1)


def stage_profile(spans: list[dict[str, Any]], repeats: int) -> dict[str, float]:
    """Milliseconds per stage of the receiver's hot path, for one body (thread CPU time)."""
    import orjson

    from span_tree._record import span_from_json_dict
    from span_tree.receiver._bulk import bulk_columns
    from span_tree.receiver._ingest import gunzip_bounded, parse_body
    from span_tree.receiver._typed import decode_body, typed_columns
    from span_tree.storage._writer import prepare_column_files, stamped_columns_table, table_bytes

    body = gzip_body(spans)
    raw = orjson.dumps({"tags": {}, "spans": spans})

    def timed(action: Callable[[], Any]) -> float:
        samples = []
        for _ in range(repeats):
            start = time.thread_time()
            action()
            samples.append(time.thread_time() - start)
        return statistics.median(samples) * 1e3

    decoded = orjson.loads(raw)["spans"]
    structs = decode_body(raw)[0]  # type: ignore[index]
    columns = parse_body(raw, namespace="bench").columns
    table = stamped_columns_table(columns, 1)
    return {
        "gunzip": timed(lambda: gunzip_bounded(body, limit=1 << 30)),
        "json.loads (stdlib)": timed(lambda: json.loads(raw)),
        "orjson.loads": timed(lambda: orjson.loads(raw)),
        "validate (span_from_json_dict)": timed(
            lambda: [span_from_json_dict(item, namespace="bench") for item in decoded]
        ),
        "bulk_columns (usual path, after orjson)": timed(
            lambda: bulk_columns(decoded, namespace="bench", tags={})
        ),
        "msgspec decode (typed path)": timed(lambda: decode_body(raw)),
        "typed_columns (typed path)": timed(
            lambda: typed_columns(structs, namespace="bench", tags={})
        ),
        "parse_body (typed path, as served)": timed(lambda: parse_body(raw, namespace="bench")),
        "columns -> sorted Arrow table": timed(lambda: stamped_columns_table(columns, 1)),
        "Arrow table -> zstd Parquet bytes": timed(lambda: table_bytes(table)),
        "prepare_column_files (both)": timed(lambda: prepare_column_files(columns)),
    }


def bench_direct(body: bytes, requests: int, store: str) -> dict[str, float]:
    """The same bodies parsed and written in-process as the receiver does: no HTTP."""
    from span_tree.receiver._ingest import gunzip_bounded, parse_body
    from span_tree.storage import open_store
    from span_tree.storage._writer import prepare_column_files, put_prepared

    location = open_store(store)
    start = time.perf_counter()
    cpu_start = time.process_time()
    latencies = []
    spans = 0
    for _ in range(requests):
        began = time.perf_counter()
        parsed = parse_body(gunzip_bounded(body, limit=1 << 30), namespace="bench")
        for prepared in prepare_column_files(parsed.columns, batch_id=parsed.batch_id):
            put_prepared(location, prepared)
        latencies.append(time.perf_counter() - began)
        spans += parsed.span_count
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    return {
        "spans_per_s": spans / elapsed,
        "p99_ms": _p99(latencies) * 1e3,
        "spans_per_cpu_s": spans / cpu if cpu > 0 else float("nan"),
    }


def server_cpu_seconds(pid: int) -> float:
    """CPU seconds used so far by the receiver process and its workers."""
    import psutil

    process = psutil.Process(pid)
    total = 0.0
    for proc in [process, *process.children(recursive=True)]:
        try:
            times = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def bench_http(url: str, key: str, body: bytes, spans_per_body: int, clients: int,
               requests: int, pid: int) -> dict[str, float]:  # fmt: skip
    """``clients`` threads share ``requests`` POSTs; spans/s, p99, receiver CPU per span."""
    headers = {"X-API-Key": key, "Content-Encoding": "gzip", "Content-Type": "application/json"}
    return post_load(
        url + "/v1/spans", headers, body, spans_per_body, clients, requests, pid, ok=202
    )


def post_load(url: str, headers: dict[str, str], body: bytes, spans_per_body: int,
              clients: int, requests: int, pid: int, *, ok: int) -> dict[str, float]:  # fmt: skip
    """``clients`` threads (one keep-alive HTTP/1.1 connection each) share ``requests`` POSTs.

    The client is the standard library's ``http.client``: a pre-encoded body on a kept-alive
    connection, what a lean sender (an OTel collector, a Go or Rust exporter) costs. The
    clients share the receiver's cores, so httpx's ~4 ms of client CPU per request (measured
    on a 1,000-span body) would be taken from the receiver being measured.
    """
    parts = urlsplit(url)
    request_headers = {**headers, "Content-Length": str(len(body))}

    def session() -> AbstractContextManager[http.client.HTTPConnection]:
        return closing(http.client.HTTPConnection(parts.hostname, parts.port, timeout=60))

    def send(connection: http.client.HTTPConnection) -> int | None:
        connection.request("POST", parts.path, body=body, headers=request_headers)
        response = connection.getresponse()
        response.read()
        return None if response.status == ok else response.status

    return client_load(clients, requests, requests * spans_per_body, pid, session, send)


def client_load(clients: int, requests: int, spans: int, pid: int,
                session: Callable[[], AbstractContextManager[Any]],
                send: Callable[[Any], int | None]) -> dict[str, float]:  # fmt: skip
    """The client load loop: ``clients`` threads share ``requests`` calls of ``send``.

    Each thread opens its own ``session()`` and calls ``send(session)`` until the
    requests are used up; ``send`` returns ``None`` when the receiver accepted, else a
    failure code. Returns spans/s, the p99 request latency and spans per CPU-second of
    the receiver (process ``pid`` and its workers).
    """
    latencies: list[float] = []
    failures: list[int] = []
    remaining = iter(range(requests))
    lock = threading.Lock()

    def client() -> None:
        with session() as opened:
            while True:
                with lock:
                    if next(remaining, None) is None:
                        return
                began = time.perf_counter()
                failure = send(opened)
                took = time.perf_counter() - began
                with lock:
                    latencies.append(took)
                    if failure is not None:
                        failures.append(failure)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    cpu_before = server_cpu_seconds(pid)
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    cpu = server_cpu_seconds(pid) - cpu_before
    if failures:
        raise RuntimeError(f"receiver refused requests: {sorted(set(failures))}")
    return {
        "spans_per_s": spans / elapsed,
        "p99_ms": _p99(latencies) * 1e3,
        "spans_per_cpu_s": spans / cpu if cpu > 0 else float("nan"),
    }


def _p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


def median_run(run: Callable[[], dict[str, float]], repeats: int) -> dict[str, float]:
    """Median spans/s and p99 over ``repeats`` runs."""
    results = [run() for _ in range(repeats)]
    return {name: statistics.median(r[name] for r in results) for name in results[0]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=40, help="requests per run")
    parser.add_argument("--repeats", type=int, default=3, help="runs per configuration")
    parser.add_argument("--batch", type=int, default=1000, help="spans per request")
    parser.add_argument("--clients", default="1,4,16", help="client thread counts")
    args = parser.parse_args(argv)

    from span_tree.receiver import key_store
    from span_tree.receiver._subprocess import ReceiverProcess

    spans = realistic_spans(args.batch)
    body = gzip_body(spans)
    raw_size = len(json.dumps({"spans": spans}))
    print(
        f"body: {args.batch} spans, {raw_size / 1024:.0f} KiB JSON, {len(body) / 1024:.0f} KiB gzip"
    )
    print("\nstage profile (ms per body, median):")
    profile = stage_profile(spans, repeats=max(5, args.repeats))
    for stage, ms in profile.items():
        print(f"  {stage:<40} {ms:8.2f}")

    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as store:
        key = key_store(store).create("bench")
        direct = median_run(lambda: bench_direct(body, args.requests, store), args.repeats)
        rows.append({"setup": "in-process, no HTTP (ceiling)", "clients": 1, **direct})
        for workers in (1, 2):
            receiver = ReceiverProcess(store, args=["--workers", str(workers)])
            receiver.start()
            try:
                for clients in [int(c) for c in args.clients.split(",")]:
                    result = median_run(
                        lambda url=receiver.url, c=clients, pid=receiver.pid: bench_http(  # type: ignore[misc]
                            url, key, body, args.batch, c, args.requests, pid
                        ),
                        args.repeats,
                    )
                    rows.append(
                        {"setup": f"receiver, {workers} worker(s)", "clients": clients, **result}
                    )
            finally:
                receiver.stop()

    ceiling = rows[0]["spans_per_s"]
    print(
        f"\n{'setup':<32} {'clients':>7} {'spans/s':>10} {'vs ceiling':>10} {'p99 ms':>8}"
        f" {'spans/CPU-s':>12}"
    )
    for row in rows:
        row["ratio_to_ceiling"] = row["spans_per_s"] / ceiling
        print(
            f"{row['setup']:<32} {row['clients']:>7} {row['spans_per_s']:>10,.0f}"
            f" {row['ratio_to_ceiling']:>10.2f} {row['p99_ms']:>8.1f}"
            f" {row['spans_per_cpu_s']:>12,.0f}"
        )
    load = os.getloadavg()[0]
    print(
        f"\nload average during the run: {load:.1f} on {os.cpu_count()} cores"
        " (spans/CPU-s is the receiver's own CPU time: meaningful on a busy machine)"
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "benchmark": "receiver",
                "python": sys.version.split()[0],
                "machine": f"{platform.machine()} {os.cpu_count()} cpu",
                "batch": args.batch,
                "requests_per_run": args.requests,
                "repeats": args.repeats,
                "load_average": os.getloadavg()[0],
                "stage_ms_per_body": profile,
                "results": rows,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"\nwrote {RESULTS}")


if __name__ == "__main__":
    main()
