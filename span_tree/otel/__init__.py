"""OpenTelemetry both ways: OTel SDK spans into span-tree's sinks, span-tree out as OTLP.

- ``SpanTreeExporter``: an OTel SDK ``SpanExporter`` (use it with the SDK's
  ``BatchSpanProcessor``) handing OTel spans to span-tree's sinks: the Parquet store,
  jsonl, the console tree, the HTTP receiver.
- ``OtlpSink``: a span-tree sink exporting OTLP/HTTP protobuf to any OTel backend
  (``configure(otlp_endpoint=...)`` or the ``OTEL_EXPORTER_OTLP_*`` variables).
- ``install_context_bridge()``: span-tree spans opened inside an active OTel span (and
  OTel spans inside a span-tree span) join the same trace.

The mapping between the two models is one table (README, "OpenTelemetry"). Needs the
``span-tree[otel]`` extra; ``import span_tree`` never loads any of it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from span_tree._lazy import lazy_attributes
from span_tree.otel._proto import INSTALL_HINT, OtelNotInstalled

if TYPE_CHECKING:
    from span_tree.otel._bridge import install_context_bridge, uninstall_context_bridge
    from span_tree.otel._exporter import SpanTreeExporter
    from span_tree.otel._sink import OtlpSink

# Loaded on first use (PEP 562), so that a missing extra is one clear error naming it.
_load = lazy_attributes(
    __name__,
    {
        "OtlpSink": "span_tree.otel._sink",
        "SpanTreeExporter": "span_tree.otel._exporter",
        "install_context_bridge": "span_tree.otel._bridge",
        "uninstall_context_bridge": "span_tree.otel._bridge",
    },
)


def __getattr__(name: str) -> Any:
    try:
        return _load(name)
    except ImportError as error:
        if isinstance(error, OtelNotInstalled):
            raise
        raise OtelNotInstalled(f"{INSTALL_HINT} ({error})") from error


__all__ = [
    "INSTALL_HINT",
    "OtelNotInstalled",
    "OtlpSink",
    "SpanTreeExporter",
    "install_context_bridge",
    "uninstall_context_bridge",
]
