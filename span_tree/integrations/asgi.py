"""ASGI middleware: each HTTP request becomes a server span, continuing the caller's trace.

When the request carries a W3C ``traceparent`` (see ``span_tree.integrations.httpx``),
the span joins that trace with the caller's span as parent, so one trace covers both
processes; otherwise the request starts a new trace.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from span_tree._span import Span
from span_tree.integrations._traceparent import remote_parent

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class TraceMiddleware:
    """Wrap an ASGI app so every HTTP request runs inside a ``kind="server"`` span.

    Args:
        app: the ASGI application to wrap.
        name: span name from the scope; default ``"<METHOD> <path>"``.
    """

    def __init__(self, app: ASGIApp, *, name: Callable[[Scope], str] | None = None) -> None:
        self.app = app
        self._name = name or _default_name

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the request inside its span (other scope types pass through)."""
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        headers = {
            key.decode("latin-1"): value.decode("latin-1")
            for key, value in scope.get("headers", ())
            if key.lower() in (b"traceparent", b"tracestate")
        }
        attributes: dict[str, Any] = {
            "http.method": scope.get("method", ""),
            "http.path": scope.get("path", ""),
        }
        # A new Span object per request: concurrent requests on one event loop each
        # enter and exit their own span.
        span = Span(
            self._name(scope), attributes, kind="server", remote_parent=remote_parent(headers)
        )
        status: list[int] = []

        async def send_and_record(message: Message) -> None:
            if message.get("type") == "http.response.start":
                status.append(int(message.get("status", 0)))
            await send(message)

        with span:
            try:
                await self.app(scope, receive, send_and_record)
            finally:
                if status and span.trace_id:  # not recorded when tracing is off
                    span.set_attribute("http.status_code", status[0])


def _default_name(scope: Scope) -> str:
    return f"{scope.get('method', 'HTTP')} {scope.get('path', '')}"
