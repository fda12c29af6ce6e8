"""W3C Trace Context headers for span-tree traces.

``traceparent: 00-<32 hex trace id>-<16 hex parent span id>-01`` carries the trace across
a process boundary; ``tracestate: spantree=<KSUID>`` carries the exact KSUID trace id so
the receiving side keeps it (the 32 hex form is only the KSUID's payload). Without
``tracestate`` (a caller that is not span-tree: OpenTelemetry, a load balancer, curl)
the trace id is ``trace_id_from_w3c(hex)``: the same KSUID in every process and every
second, so one W3C trace is one stored trace.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from span_tree._ids import is_trace_id, trace_id_from_w3c, w3c_trace_id
from span_tree._span import current_span

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
_VENDOR = "spantree"
_TRACEPARENT_RE = re.compile(
    r"^(?P<version>[0-9a-f]{2})-(?P<trace>[0-9a-f]{32})-(?P<parent>[0-9a-f]{16})-(?P<flags>[0-9a-f]{2})"
)


def trace_headers() -> dict[str, str]:
    """Return ``traceparent`` and ``tracestate`` for the current span ({} outside any span)."""
    span = current_span()
    if span is None:
        return {}
    trace_id = span.trace_id
    if not is_trace_id(trace_id):
        return {}
    return {
        TRACEPARENT: f"00-{w3c_trace_id(trace_id)}-{span.span_id}-01",
        TRACESTATE: f"{_VENDOR}={trace_id}",
    }


def remote_parent(headers: Mapping[str, str]) -> tuple[str, str] | None:
    """Read ``(trace_id KSUID, parent span id)`` from incoming headers, or None.

    Header names are matched case-insensitively. An invalid ``traceparent`` (W3C: all
    zero ids, version ``ff``) is ignored, as the specification asks.
    """
    lowered = {key.lower(): value for key, value in headers.items()}
    match = _TRACEPARENT_RE.match(lowered.get(TRACEPARENT, "").strip())
    if match is None or match["version"] == "ff":
        return None
    hex_trace, parent = match["trace"], match["parent"]
    if hex_trace == "0" * 32 or parent == "0" * 16:
        return None
    ksuid = _ksuid_from_tracestate(lowered.get(TRACESTATE, ""))
    if ksuid is None or w3c_trace_id(ksuid) != hex_trace:
        ksuid = trace_id_from_w3c(hex_trace)
    return ksuid, parent


def _ksuid_from_tracestate(value: str) -> str | None:
    for member in value.split(","):
        key, sep, item = member.strip().partition("=")
        if sep and key == _VENDOR and is_trace_id(item):
            return item
    return None
