"""OTLP ingest throughput: OTel SDK spans through `spantree serve` into Parquet, vs native.

A `spantree serve` child on loopback (2 worker processes by default) writes to a fresh
store. In the same run and against the same receiver:

- OTLP/HTTP: bodies of 1,000 realistic spans made by the real OTel SDK (its own OTLP
  protobuf encoder, gzip) posted to ``/v1/traces`` by client threads;
- native: the same workload recorded by span-tree, as HttpSink sends it (JSON, gzip),
  posted to ``/v1/spans``;
- the real ``OTLPSpanExporter`` of the SDK exporting batches itself (encoding on the
  client each time: what an instrumented service sees end to end).

Medians of several repeats; spans per CPU-second of the receiver's processes (psutil)
stays meaningful when other work shares the machine. Also a stage profile per body.

    python benchmarks/otlp.py [--requests 40] [--repeats 3] [--workers 2] [--clients 4]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
import receiver as native_bench  # benchmarks/receiver.py: the native path

RESULTS = Path(__file__).parent / "results" / "otlp.json"


def otel_spans(count: int) -> list[Any]:
    """``count`` finished SDK spans shaped like ``receiver.realistic_spans``: a request with
    four DB queries, each with a log event."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind

    memory = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource.create({"service.name": "bench", "deployment.environment.name": "b"})
    )
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("bench.app", "1.0")
    while len(memory.get_finished_spans()) < count:
        attributes = {"route": "/orders", "user_id": 42}
        with tracer.start_as_current_span("handle_request", kind=SpanKind.SERVER) as root:
            root.set_attributes(attributes)
            for step in range(4):
                with tracer.start_as_current_span("db.query") as query:
                    query.set_attributes({"table": "orders", "rows": step * 10})
                    query.add_event(f"fetched {step * 10} rows", {"level": "INFO"})
    spans = list(memory.get_finished_spans()[:count])
    provider.shutdown()
    return spans


def otlp_body(spans: list[Any]) -> bytes:
    """The body the SDK's OTLP/HTTP exporter sends with gzip compression."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    return gzip.compress(encode_spans(spans).SerializeToString(), compresslevel=1)


def stage_profile(spans: list[Any], native: list[dict[str, Any]], repeats: int) -> dict[str, float]:
    """Milliseconds per stage and per body of 1,000 spans, OTLP and native."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    from span_tree._sanitize import DEFAULT_SCRUB_KEYS, scrub_pattern
    from span_tree.otel._columns import columns_from_traces
    from span_tree.otel._mapping import records_from_traces
    from span_tree.otel._proto import trace_service_pb2
    from span_tree.receiver._ingest import parse_body
    from span_tree.storage._writer import prepare_column_files

    request_class = trace_service_pb2().ExportTraceServiceRequest
    raw = encode_spans(spans).SerializeToString()
    scrub = scrub_pattern(DEFAULT_SCRUB_KEYS)
    message = request_class.FromString(raw)
    columns = columns_from_traces(message, namespace="bench", scrub=scrub).columns
    native_raw = json.dumps({"tags": {}, "spans": native}).encode()
    native_columns = parse_body(native_raw, namespace="bench").columns

    def timed(action: Callable[[], Any]) -> float:
        samples = []
        for _ in range(repeats):
            start = time.perf_counter()
            action()
            samples.append(time.perf_counter() - start)
        return statistics.median(samples) * 1e3

    return {
        "OTel SDK encode (client side)": timed(lambda: encode_spans(spans).SerializeToString()),
        "OTLP protobuf parse": timed(lambda: request_class.FromString(raw)),
        # The receiver's path: straight to the writer's columns.
        "OTLP map to columns (as served)": timed(
            lambda: columns_from_traces(message, namespace="bench", scrub=scrub)
        ),
        "OTLP columns to Parquet": timed(lambda: prepare_column_files(columns)),
        # What the in-process bridge (span_tree.otel's exporter) makes for sinks.
        "OTLP map to records (SDK bridge)": timed(
            lambda: records_from_traces(message, namespace="bench", scrub=scrub)
        ),
        # The native path as the receiver serves it: typed columns, no records.
        "native parse_body (JSON)": timed(lambda: parse_body(native_raw, namespace="bench")),
        "native columns to Parquet": timed(lambda: prepare_column_files(native_columns)),
    }


def bench_posts(url: str, headers: dict[str, str], body: bytes, spans_per_body: int,
                clients: int, requests: int, pid: int, ok: int) -> dict[str, float]:  # fmt: skip
    """``clients`` threads share ``requests`` POSTs of ``body``; spans/s and server CPU."""
    return native_bench.post_load(url, headers, body, spans_per_body, clients, requests, pid, ok=ok)


def bench_exporter(url: str, key: str, spans: list[Any], clients: int, requests: int,
                   pid: int) -> dict[str, float]:  # fmt: skip
    """The SDK's own OTLPSpanExporter (one per client thread) exporting ``spans`` batches."""
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import SpanExportResult

    @contextmanager
    def exporter() -> Iterator[OTLPSpanExporter]:
        opened = OTLPSpanExporter(
            endpoint=url + "/v1/traces",
            headers={"x-api-key": key},
            compression=Compression.Gzip,
        )
        try:
            yield opened
        finally:
            opened.shutdown()

    def send(opened: OTLPSpanExporter) -> int | None:
        return None if opened.export(spans) is SpanExportResult.SUCCESS else 0

    return native_bench.client_load(clients, requests, requests * len(spans), pid, exporter, send)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=40, help="requests per run")
    parser.add_argument("--repeats", type=int, default=3, help="runs per configuration")
    parser.add_argument("--batch", type=int, default=1000, help="spans per request")
    parser.add_argument("--workers", type=int, default=2, help="receiver worker processes")
    parser.add_argument("--clients", type=int, default=4, help="client threads")
    args = parser.parse_args(argv)

    from span_tree.receiver import key_store
    from span_tree.receiver._subprocess import ReceiverProcess

    spans = otel_spans(args.batch)
    body = otlp_body(spans)
    native = native_bench.realistic_spans(args.batch)
    native_body = native_bench.gzip_body(native)
    print(
        f"bodies of {args.batch} spans: OTLP {len(body) / 1024:.0f} KiB gzip,"
        f" native {len(native_body) / 1024:.0f} KiB gzip"
    )
    profile = stage_profile(spans, native, repeats=max(5, args.repeats))
    print("\nstage profile (ms per body, median):")
    for stage, ms in profile.items():
        print(f"  {stage:<34} {ms:8.2f}")

    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(dir=os.environ.get("SPANTREE_BENCH_DIR")) as store:
        key = key_store(store).create("bench")
        receiver = ReceiverProcess(store, args=["--workers", str(args.workers)])
        receiver.start()
        try:
            otlp_headers = {
                "X-API-Key": key,
                "Content-Type": "application/x-protobuf",
                "Content-Encoding": "gzip",
            }
            native_headers = {
                "X-API-Key": key,
                "Content-Type": "application/json",
                "Content-Encoding": "gzip",
            }
            runs: list[tuple[str, Callable[[], dict[str, float]]]] = [
                (
                    "native /v1/spans (JSON)",
                    lambda: bench_posts(
                        receiver.url + "/v1/spans",
                        native_headers,
                        native_body,
                        args.batch,
                        args.clients,
                        args.requests,
                        receiver.pid,
                        202,
                    ),
                ),
                (
                    "OTLP /v1/traces (protobuf)",
                    lambda: bench_posts(
                        receiver.url + "/v1/traces",
                        otlp_headers,
                        body,
                        args.batch,
                        args.clients,
                        args.requests,
                        receiver.pid,
                        200,
                    ),
                ),
                (
                    "OTel SDK OTLPSpanExporter",
                    lambda: bench_exporter(
                        receiver.url, key, spans, args.clients, args.requests, receiver.pid
                    ),
                ),
            ]
            results: dict[str, list[dict[str, float]]] = {name: [] for name, _ in runs}
            for _ in range(args.repeats):  # interleaved: load changes hit every setup alike
                for name, run in runs:
                    results[name].append(run())
        finally:
            receiver.stop()
    for name, samples in results.items():
        row = {key: statistics.median(s[key] for s in samples) for key in samples[0]}
        rows.append({"setup": name, "workers": args.workers, "clients": args.clients, **row})

    native_rate = rows[0]["spans_per_s"]
    native_cpu = rows[0]["spans_per_cpu_s"]
    print(
        f"\n{'setup':<30} {'spans/s':>10} {'vs native':>9} {'p99 ms':>8} {'spans/CPU-s':>12}"
        f" {'vs native':>9}"
    )
    for row in rows:
        row["ratio_to_native"] = row["spans_per_s"] / native_rate
        row["cpu_ratio_to_native"] = row["spans_per_cpu_s"] / native_cpu
        print(
            f"{row['setup']:<30} {row['spans_per_s']:>10,.0f} {row['ratio_to_native']:>9.2f}"
            f" {row['p99_ms']:>8.1f} {row['spans_per_cpu_s']:>12,.0f}"
            f" {row['cpu_ratio_to_native']:>9.2f}"
        )
    load = os.getloadavg()[0]
    print(f"\nload average: {load:.1f} on {os.cpu_count()} cores; receiver: {args.workers} workers")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "benchmark": "otlp",
                "python": sys.version.split()[0],
                "machine": f"{platform.machine()} {os.cpu_count()} cpu",
                "batch": args.batch,
                "requests_per_run": args.requests,
                "repeats": args.repeats,
                "load_average": load,
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
