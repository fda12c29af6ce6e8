"""Integrations with other libraries: W3C trace context over httpx and ASGI.

Opt-in and imported on demand (``span_tree.integrations.httpx``,
``span_tree.integrations.asgi``); this package itself needs only the standard library.
"""

from __future__ import annotations

from span_tree.integrations._traceparent import remote_parent, trace_headers

__all__ = ["remote_parent", "trace_headers"]
