"""ASGI middleware: each HTTP request becomes a server span, continuing the caller's trace.

When the request carries a W3C ``traceparent`` (see ``span_tree.integrations.httpx``),
the span joins that trace with the caller's span as parent, so one trace covers both
processes; otherwise the request starts a new trace.

Naming and status follow OpenTelemetry's HTTP server conventions:

- The span is named ``"<METHOD> <route template>"`` (``GET /orders/{order_id}``) once
  the framework has routed the request (Starlette and FastAPI leave the matched route
  in the scope; mounted apps add their mount path); the raw path stays in ``url.path``.
  A request that matched no route of a routed app is named by its method only (``GET``),
  so scanners probing random paths make one name, not thousands. A plain ASGI app
  without routing gets its path with id-like segments folded (``fold_path``).
- A response status >= 500 fails the span (error type ``HTTP 503``, the reason phrase
  as message) even without an exception; 4xx is only the ``http.response.status_code``
  attribute (the client's mistake, not the server's failure).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable, MutableMapping
from http import HTTPStatus
from typing import Any

from span_tree._span import Span
from span_tree.integrations._traceparent import remote_parent

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_UUID = re.compile(r"^[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}$")
_LONG_HEX = re.compile(r"^(?=[^0-9]*[0-9])[0-9a-fA-F]{16,}$")
_NUMBER = re.compile(r"^[0-9]+$")
_CONVERTOR = re.compile(r"\{(\w+):[^}]*\}")
_ROUTE_CACHE_LIMIT = 4096


def fold_path(path: str) -> str:
    """Fold the id-like segments of a URL path into ``{id}``: the fallback span name.

    Numbers, UUIDs and long hex ids (16+ hex characters with a digit) become ``{id}``:
    ``/orders/97711/items/3f2a...`` -> ``/orders/{id}/items/{id}``.
    """
    return "/".join(
        "{id}" if _NUMBER.match(part) or _UUID.match(part) or _LONG_HEX.match(part) else part
        for part in path.split("/")
    )


class TraceMiddleware:
    """Wrap an ASGI app so every HTTP request runs inside a ``kind="server"`` span.

    Works wrapped around the app (``TraceMiddleware(app)``) and added to a Starlette or
    FastAPI app (``app.add_middleware(TraceMiddleware)``).

    Args:
        app: the ASGI application to wrap.
        name: span name from the scope, called when the request ends (the scope then
            holds the framework's matched route); default: the route naming rules of
            this module.
    """

    def __init__(self, app: ASGIApp, *, name: Callable[[Scope], str] | None = None) -> None:
        self.app = app
        self._name = name
        self._routes: dict[tuple[int, int], tuple[Any, Any, str]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the request inside its span (other scope types pass through)."""
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        headers: dict[str, str] = {}
        for key, value in scope.get("headers", ()):
            name = key.decode("latin-1").lower()
            if name in ("traceparent", "tracestate", "user-agent", "host"):
                headers[name] = value.decode("latin-1")
        method = str(scope.get("method", "HTTP"))
        path = str(scope.get("path", ""))
        # A new Span object per request: concurrent requests on one event loop each
        # enter and exit their own span.
        span = Span(
            f"{method} {fold_path(path)}",
            _request_attributes(scope, headers, method, path),
            kind="server",
            remote_parent=remote_parent(headers),
        )
        entry_root_path = str(scope.get("root_path", ""))
        status: list[int] = []

        async def send_and_record(message: Message) -> None:
            if message.get("type") == "http.response.start":
                status.append(int(message.get("status", 0)))
            await send(message)

        with span:
            try:
                await self.app(scope, receive, send_and_record)
            finally:
                # An exception still propagating replaces any HTTP status error (the
                # span's __exit__ records the exception).
                if span.trace_id:  # not recorded when tracing is off
                    self._finish(span, scope, entry_root_path, method, status)

    def _finish(
        self, span: Span, scope: Scope, entry_root_path: str, method: str, status: list[int]
    ) -> None:
        try:
            if self._name is not None:
                span.name = self._name(scope)
            else:
                route = self._route_template(scope, entry_root_path)
                if route is not None:
                    span.name = f"{method} {route}" if route else method
                    if route:
                        span.set_attribute("http.route", route)
            _point_at_endpoint(span, scope.get("endpoint"))
        except Exception:  # naming must never fail the request
            pass
        if status:
            code = status[0]
            span.set_attribute("http.response.status_code", code)
            if code >= 500:
                span.error = (f"HTTP {code}", _reason(code), "")

    def _route_template(self, scope: Scope, entry_root_path: str) -> str | None:
        """The matched route's template ("" when routed but unmatched), or None (no router)."""
        route = scope.get("route")
        router = scope.get("router")
        if route is None:
            return "" if router is not None else None
        key = (id(router), id(route))
        cached = self._routes.get(key)
        if cached is not None:
            return cached[2]
        template = _template_under(router, route) if router is not None else None
        if template is None:
            # No router to walk: the mounts' part is what they consumed of the path.
            prefix = str(scope.get("root_path", ""))
            prefix = prefix[len(entry_root_path) :] if prefix.startswith(entry_root_path) else ""
            template = fold_path(prefix) + _route_path(route, final=True)
        if len(self._routes) < _ROUTE_CACHE_LIMIT:
            # Keep the objects: their ids must not be reused by other objects.
            self._routes[key] = (router, route, template)
        return template


def _request_attributes(
    scope: Scope, headers: dict[str, str], method: str, path: str
) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "http.request.method": method,
        "url.path": path,
        "url.scheme": scope.get("scheme", "http"),
    }
    host = headers.get("host")
    server = scope.get("server")
    if host:
        name, _, port = host.rpartition(":")
        if not port.isdigit() or not name:  # no port (or an IPv6 address without one)
            name, port = host, ""
        attributes["server.address"] = name
        if port:
            attributes["server.port"] = int(port)
    elif server:
        attributes["server.address"] = str(server[0])
        if len(server) > 1 and server[1] is not None:
            attributes["server.port"] = int(server[1])
    client = scope.get("client")
    if client:
        attributes["client.address"] = str(client[0])
    if "user-agent" in headers:
        attributes["user_agent.original"] = headers["user-agent"]
    return attributes


def _route_path(route: Any, *, final: bool) -> str:
    """A route's own part of the template, converters dropped (``{id:int}`` -> ``{id}``)."""
    path = str(getattr(route, "path", "") or "")
    if final and hasattr(route, "routes"):
        path += "/{path}"  # a mount that is the end of routing (static files, sub-app)
    return _CONVERTOR.sub(r"{\1}", path)


def _template_under(router: Any, target: Any) -> str | None:
    """The full template of ``target`` found under ``router``'s routes and mounts."""
    stack: list[tuple[Any, str, int]] = [(route, "", 0) for route in _routes_of(router)]
    while stack:
        route, prefix, depth = stack.pop()
        if route is target:
            return prefix + _route_path(route, final=True)
        if depth < 8 and hasattr(route, "routes"):
            inner = prefix + _route_path(route, final=False)
            stack.extend((child, inner, depth + 1) for child in _routes_of(route))
    return None


def _routes_of(node: Any) -> list[Any]:
    routes = getattr(node, "routes", None)
    return list(routes) if isinstance(routes, list | tuple) else []


def _point_at_endpoint(span: Span, endpoint: Any) -> None:
    """Record the handler's code location on the span (file, line, function columns)."""
    if endpoint is None:
        return
    code = getattr(inspect.unwrap(endpoint), "__code__", None)
    if code is not None:
        span.code = code
        span.line = code.co_firstlineno


def _reason(code: int) -> str:
    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return ""
