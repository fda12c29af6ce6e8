"""``SpanTreeExporter``: OTel SDK spans into span-tree's sinks, no server in between."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from span_tree import _runtime
from span_tree._record import FinishedSpan
from span_tree.otel._mapping import records_from_traces
from span_tree.typing import Sink


class SpanTreeExporter(SpanExporter):
    """An OTel ``SpanExporter`` that hands the SDK's spans to span-tree's sinks.

    Use it with the SDK's ``BatchSpanProcessor``::

        provider.add_span_processor(BatchSpanProcessor(SpanTreeExporter()))

    OTel spans are mapped exactly as the receiver's ``/v1/traces`` maps them (the SDK's
    own OTLP encoder, then span-tree's one mapping), so a trace looks the same whether
    it came through the receiver or straight from the process.

    Args:
        sinks: where the spans go. Default: span-tree's own pipeline as
            ``span_tree.configure()`` (or the ``SPANTREE_*`` variables) set it up, so the
            local Parquet store, the console tree, jsonl or the HTTP receiver get OTel
            spans next to span-tree's own. Given sinks are called directly on the
            batch processor's thread, which also calls their ``tick()`` after each
            export (a ParquetSink writes a batch that reached ``max_age`` then).
        namespace: the store namespace (default: the configured one).
    """

    def __init__(self, *, sinks: Sequence[Sink] | None = None, namespace: str | None = None):
        self._sinks = list(sinks) if sinks is not None else None
        self._namespace = namespace
        self._lock = threading.Lock()
        self._shut_down = False
        self.exported_spans = 0
        self.rejected_spans = 0
        self.failed_exports = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Map ``spans`` and hand them on; never raises."""
        if self._shut_down:
            return SpanExportResult.FAILURE
        try:
            records = self._records(spans)
        except Exception:
            self.failed_exports += 1
            return SpanExportResult.FAILURE
        if self._sinks is None:
            if _runtime.state.processor is None:
                _runtime.auto_configure()
            for record in records:
                _runtime.emit_snapshot(record)
        else:
            with self._lock:
                failed = self._export_to_sinks(records)
            if failed:
                self.failed_exports += 1
                return SpanExportResult.FAILURE
        self.exported_spans += len(records)
        return SpanExportResult.SUCCESS

    def _records(self, spans: Sequence[ReadableSpan]) -> list[FinishedSpan]:
        settings = _runtime.state.settings
        mapped = records_from_traces(
            encode_spans(spans),
            namespace=self._namespace or settings.namespace,
            scrub=settings.scrub_pattern,
        )
        self.rejected_spans += mapped.rejected
        return mapped.records

    def _export_to_sinks(self, records: list[FinishedSpan]) -> bool:
        assert self._sinks is not None
        failed = False
        for sink in self._sinks:
            try:
                sink.export(records)
            except Exception:
                failed = True
            # Sinks own no threads: each export is also their tick (age, spool replay).
            tick = getattr(sink, "tick", None)
            if callable(tick):
                _quiet(tick)
        return failed

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Flush the sinks (span-tree's pipeline, or the given sinks)."""
        timeout = timeout_millis / 1000
        if self._sinks is None:
            processor = _runtime.state.processor
            return True if processor is None else processor.flush(timeout)
        with self._lock:
            return all(_quiet(sink.force_flush, timeout) for sink in self._sinks)

    def shutdown(self) -> None:
        """Flush; given sinks are shut down too (span-tree's own pipeline stays up)."""
        self.force_flush()
        self._shut_down = True
        if self._sinks is not None:
            with self._lock:
                for sink in self._sinks:
                    _quiet(sink.shutdown)


def _quiet(action: Any, *args: Any) -> bool:
    try:
        result = action(*args)
    except Exception:
        return False
    return result is not False
