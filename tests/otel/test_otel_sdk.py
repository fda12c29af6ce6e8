"""The OTel SDK straight into span-tree (SpanTreeExporter) and the in-process context bridge."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.trace import Status, StatusCode

import span_tree
from span_tree._ids import w3c_trace_id
from span_tree._record import FinishedSpan
from span_tree.otel import SpanTreeExporter, install_context_bridge, uninstall_context_bridge
from span_tree.sinks.console import ConsoleSink
from span_tree.sinks.jsonl import JsonlSink
from span_tree.sinks.memory import MemorySink
from span_tree.sinks.parquet import ParquetSink


def provider_with(exporter: SpanTreeExporter, *, batch: bool = False) -> TracerProvider:
    """An SDK provider for service "shop" exporting through ``exporter``."""
    provider = TracerProvider(resource=Resource.create({"service.name": "shop"}))
    processor = BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter)
    provider.add_span_processor(processor)
    return provider


def by_name(spans: list[FinishedSpan]) -> dict[str, FinishedSpan]:
    """Spans keyed by name (finished versions only)."""
    return {span.name: span for span in spans if span.status != "started"}


@pytest.fixture
def bridge() -> Iterator[None]:
    """The context bridge, installed for one test."""
    install_context_bridge()
    yield
    uninstall_context_bridge()


def test_exporter_feeds_span_trees_configured_sinks(memory_sink: MemorySink) -> None:
    """With BatchSpanProcessor, OTel spans reach span-tree's pipeline as one mapped tree."""
    provider = provider_with(SpanTreeExporter(), batch=True)
    tracer = provider.get_tracer("shop.web")
    with tracer.start_as_current_span("GET /cart") as root:
        try:
            with tracer.start_as_current_span("load cart"):
                raise LookupError("cart 7 missing")
        except LookupError:
            root.set_status(Status(StatusCode.ERROR))
    provider.shutdown()
    assert span_tree.flush(5)
    spans = by_name(memory_sink.spans)
    hex_id = format(root.get_span_context().trace_id, "032x")
    assert {hex_id} == {w3c_trace_id(span.trace_id) for span in spans.values()}
    assert (None, spans["GET /cart"].span_id) == (
        spans["GET /cart"].parent_id,
        spans["load cart"].parent_id,
    )
    assert ("failed", "LookupError", "cart 7 missing", "shop") == (
        spans["load cart"].status,
        spans["load cart"].error_type,
        spans["load cart"].error_message,
        spans["load cart"].app,
    )


def test_exporter_into_a_parquet_store_found_by_w3c_id(tmp_path: Path) -> None:
    """Given a ParquetSink, OTel spans land in the store; Store.trace(<otel hex id>) finds them."""
    from span_tree.analytics import Store

    exporter = SpanTreeExporter(sinks=[ParquetSink(str(tmp_path))], namespace="otel")
    provider = provider_with(exporter)
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("job") as root, tracer.start_as_current_span("step"):
        pass
    provider.shutdown()
    store = Store(str(tmp_path))
    try:
        found = store.trace(format(root.get_span_context().trace_id, "032x"))
    finally:
        store.close()
    assert [("job", "otel"), ("step", "otel")] == [(span.name, span.namespace) for span in found]


def test_exporter_to_console_and_jsonl_sinks() -> None:
    """The console tree and the jsonl lines show OTel spans like span-tree's own."""
    console, lines = io.StringIO(), io.StringIO()
    exporter = SpanTreeExporter(sinks=[ConsoleSink(console), JsonlSink(lines)])
    provider = provider_with(exporter)
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("outer"), tracer.start_as_current_span("inner") as inner:
        inner.add_event("cache hit")
    provider.shutdown()
    assert ["outer", "inner", "cache hit"] == [
        word for word in ("outer", "inner", "cache hit") if word in console.getvalue()
    ]
    names = [json.loads(line)["name"] for line in lines.getvalue().splitlines()]
    assert ["inner", "outer"] == names


def test_span_tree_span_inside_an_otel_span_joins_its_trace(
    memory_sink: MemorySink, bridge: None
) -> None:
    """OTel -> span-tree -> OTel -> span-tree: one trace, each parent the next-outer span."""
    provider = provider_with(SpanTreeExporter())
    tracer = provider.get_tracer("t")
    with (
        tracer.start_as_current_span("otel-root") as root,
        span_tree.span("st-child"),
        tracer.start_as_current_span("otel-grandchild"),
        span_tree.span("st-leaf"),
    ):
        pass
    provider.shutdown()
    assert span_tree.flush(5)
    spans = by_name(memory_sink.spans)
    assert 1 == len({span.trace_id for span in spans.values()})
    assert format(root.get_span_context().trace_id, "032x") == w3c_trace_id(
        spans["st-leaf"].trace_id
    )
    parents = {name: span.parent_id for name, span in spans.items()}
    ids = {name: span.span_id for name, span in spans.items()}
    assert {
        "otel-root": None,
        "st-child": ids["otel-root"],
        "otel-grandchild": ids["st-child"],
        "st-leaf": ids["otel-grandchild"],
    } == parents


def test_otel_span_inside_a_span_tree_span_keeps_the_ksuid(
    memory_sink: MemorySink, bridge: None
) -> None:
    """span-tree -> OTel -> span-tree: the OTel span is a child, the trace keeps its KSUID."""
    provider = provider_with(SpanTreeExporter())
    tracer = provider.get_tracer("t")
    with span_tree.span("st-root") as root:
        with tracer.start_as_current_span("otel-child"), span_tree.span("st-grandchild"):
            pass
        with span_tree.span("st-sibling"):
            pass
    provider.shutdown()
    assert span_tree.flush(5)
    spans = by_name(memory_sink.spans)
    assert {root.trace_id} == {span.trace_id for span in spans.values()}
    parents = {name: span.parent_id for name, span in spans.items()}
    ids = {name: span.span_id for name, span in spans.items()}
    assert {
        "st-root": None,
        "otel-child": ids["st-root"],
        "st-grandchild": ids["otel-child"],
        "st-sibling": ids["st-root"],
    } == parents


def test_without_the_bridge_the_traces_stay_apart(memory_sink: MemorySink, bridge: None) -> None:
    """After uninstall_context_bridge() a span-tree span inside an OTel span starts a trace."""
    uninstall_context_bridge()
    provider = provider_with(SpanTreeExporter())
    with provider.get_tracer("t").start_as_current_span("otel"), span_tree.span("st"):
        pass
    provider.shutdown()
    assert span_tree.flush(5)
    spans = by_name(memory_sink.spans)
    assert (None, 2) == (spans["st"].parent_id, len({s.trace_id for s in spans.values()}))
