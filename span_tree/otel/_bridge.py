"""In-process context bridging: OTel spans and span-tree spans nest into one trace.

Both libraries keep "the current span" in a ``ContextVar`` of their own. The bridge
lets each see the other's, whichever was opened last being the parent:

- a span-tree span opened while an OTel span is the innermost open span becomes its
  child (same trace, parent = the OTel span id); core asks ``_runtime.state.foreign_parent``;
- an OTel span opened while a span-tree span is the innermost open span becomes its
  child: OTel's runtime context is wrapped so that its "current span" is then a
  non-recording stand-in carrying the span-tree span's ids, plus ``spantree=<KSUID>``
  in the trace state, which OTel children inherit, so their trace maps back to the exact
  KSUID (``_mapping.TraceIds``).

"Innermost" is decided by start time: both libraries stamp starts with
``time.time_ns()``, and among two open nested spans the inner one started later.

OTel has no public hook for this; the bridge wraps ``opentelemetry.context``'s runtime
context object, and ``uninstall_context_bridge()`` puts the original back.
"""

from __future__ import annotations

import threading
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState
from opentelemetry.trace.propagation import _SPAN_KEY

from span_tree import _runtime
from span_tree._context import current_span_var
from span_tree._ids import is_trace_id, w3c_trace_id
from span_tree.otel._mapping import TRACESTATE_VENDOR, TraceIds

_lock = threading.Lock()
_installed: _BridgedRuntimeContext | None = None
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)


class SpanTreeParent(NonRecordingSpan):
    """A span-tree span as OTel sees it: the parent of OTel spans opened inside it."""


def _started_ns(span: Any) -> int:
    start = getattr(span, "start_time", None)
    return start if isinstance(start, int) else 0


def _open_span_tree_span() -> Any:
    from span_tree._span import SUPPRESSED

    span = current_span_var.get()
    if span is None or span is SUPPRESSED or not span.start_ns or span.end_ns:
        return None
    return span


_payloads: dict[str, int] = {}


def _stand_in(span: Any) -> SpanTreeParent:
    trace_id = span.trace_id
    payload = _payloads.get(trace_id)
    if payload is None:
        payload = int(w3c_trace_id(trace_id), 16) if is_trace_id(trace_id) else 0
        if len(_payloads) > 10_000:
            _payloads.clear()
        _payloads[trace_id] = payload
    state = TraceState([(TRACESTATE_VENDOR, trace_id)]) if is_trace_id(trace_id) else None
    return SpanTreeParent(
        SpanContext(
            payload,
            int(span.span_id, 16),
            is_remote=False,
            trace_flags=_SAMPLED,
            trace_state=state,
        )
    )


class _BridgedRuntimeContext:
    """OTel's runtime context, whose current span may be the open span-tree span."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self._trace_ids = TraceIds()

    def attach(self, context: Any) -> Any:
        return self.inner.attach(context)

    def detach(self, token: Any) -> None:
        self.inner.detach(token)

    def get_current(self) -> Any:
        context = self.inner.get_current()
        try:
            span = _open_span_tree_span()
            if span is None:
                return context
            otel_span = context.get(_SPAN_KEY)
            if otel_span is not None and _started_ns(otel_span) >= span.start_ns:
                return context
            return otel_context.set_value(_SPAN_KEY, _stand_in(span), context)
        except Exception:
            return context  # the bridge never breaks the traced application

    def foreign_parent(self, parent: Any) -> tuple[str, str] | None:
        """``(KSUID, span id)`` of the open OTel span when it is newer than ``parent``."""
        try:
            otel_span = self.inner.get_current().get(_SPAN_KEY)
            if otel_span is None or isinstance(otel_span, SpanTreeParent):
                return None
            if parent is not None and _started_ns(otel_span) < parent.start_ns:
                return None
            ids = otel_span.get_span_context()
            if not ids.is_valid:
                return None
            raw = ids.trace_id.to_bytes(16, "big")
            state = ids.trace_state.to_header() if ids.trace_state else ""
            return self._trace_ids.ksuid(raw, state), f"{ids.span_id:016x}"
        except Exception:
            return None


def install_context_bridge() -> None:
    """Make OTel spans and span-tree spans opened inside each other join one trace.

    Idempotent. Call it once at start-up, after importing OpenTelemetry.
    """
    global _installed
    with _lock:
        if _installed is not None:
            return
        bridged = _BridgedRuntimeContext(otel_context._RUNTIME_CONTEXT)
        otel_context._RUNTIME_CONTEXT = bridged  # type: ignore[assignment]
        _runtime.state.foreign_parent = bridged.foreign_parent
        _installed = bridged


def uninstall_context_bridge() -> None:
    """Undo ``install_context_bridge`` (the two libraries' contexts are separate again)."""
    global _installed
    with _lock:
        if _installed is None:
            return
        otel_context._RUNTIME_CONTEXT = _installed.inner
        _runtime.state.foreign_parent = None
        _installed = None
