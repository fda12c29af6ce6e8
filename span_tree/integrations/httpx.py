"""Opt-in httpx instrumentation: each request made inside a span is a ``client`` span.

``instrument_client(client)`` instruments one ``httpx.Client`` or ``httpx.AsyncClient``;
``instrument_httpx()`` does it for every client created afterwards. A request sent
inside a span becomes its child span ``"<METHOD> <host>"`` (kind ``client``) with
OpenTelemetry's HTTP attributes (``http.request.method``, ``url.full``, ``url.path``,
``server.address``, ``server.port``, ``user_agent.original``,
``http.response.status_code``) and carries W3C trace headers naming that span as the
parent, so the receiving service (``span_tree.integrations.asgi.TraceMiddleware``)
continues the trace below it. A response status >= 500 fails the client span (error
type ``HTTP 503``); 4xx is only recorded. Outside any span nothing is recorded or added.
"""

from __future__ import annotations

from typing import Any, TypeVar

import httpx

from span_tree._span import Span, current_span
from span_tree.integrations._traceparent import trace_headers
from span_tree.integrations.asgi import _reason

ClientT = TypeVar("ClientT", httpx.Client, httpx.AsyncClient)

_MARK = "_span_tree_instrumented"
_original_inits: dict[type[Any], Any] = {}


def _client_span(request: httpx.Request) -> Span:
    url = request.url
    attributes: dict[str, Any] = {
        "http.request.method": request.method,
        "url.full": str(url),
        "url.path": url.path,
        "server.address": url.host,
    }
    if url.port is not None:
        attributes["server.port"] = url.port
    agent = request.headers.get("user-agent")
    if agent:
        attributes["user_agent.original"] = agent
    return Span(f"{request.method} {url.host}", attributes, kind="client")


def _inject(request: httpx.Request) -> None:
    for key, value in trace_headers().items():
        if key not in request.headers:  # the caller's own header wins
            request.headers[key] = value


def _record_response(span: Span, response: httpx.Response) -> None:
    if not span.trace_id:  # not recorded (tracing off)
        return
    code = response.status_code
    span.set_attribute("http.response.status_code", code)
    if code >= 500:
        span.error = (f"HTTP {code}", response.reason_phrase or _reason(code), "")


def instrument_client(client: ClientT) -> ClientT:
    """Record a client span for each request ``client`` sends inside a span.

    Args:
        client: an ``httpx.Client`` or ``httpx.AsyncClient``.

    Returns:
        The same client (so ``client = instrument_client(httpx.Client())`` reads well).
    """
    if getattr(client, _MARK, False):
        return client
    send = client.send
    if isinstance(client, httpx.AsyncClient):

        async def send_async(request: httpx.Request, **kwargs: Any) -> httpx.Response:
            if current_span() is None:
                return await send(request, **kwargs)
            with _client_span(request) as span:
                _inject(request)
                response = await send(request, **kwargs)
                _record_response(span, response)
                return response

        client.send = send_async  # type: ignore[method-assign]
    else:

        def send_sync(request: httpx.Request, **kwargs: Any) -> httpx.Response:
            if current_span() is None:
                return send(request, **kwargs)
            with _client_span(request) as span:
                _inject(request)
                response = send(request, **kwargs)
                _record_response(span, response)
                return response

        client.send = send_sync  # type: ignore[method-assign]
    setattr(client, _MARK, True)
    return client


def instrument_httpx() -> None:
    """Instrument every ``httpx.Client`` and ``httpx.AsyncClient`` created from now on."""
    for cls in (httpx.Client, httpx.AsyncClient):
        if cls in _original_inits:
            continue
        original = cls.__init__
        _original_inits[cls] = original

        def patched(self: Any, *args: Any, __original: Any = original, **kwargs: Any) -> None:
            __original(self, *args, **kwargs)
            instrument_client(self)

        cls.__init__ = patched  # type: ignore[method-assign]


def uninstrument_httpx() -> None:
    """Undo ``instrument_httpx`` (clients already instrumented stay instrumented)."""
    for cls, original in list(_original_inits.items()):
        cls.__init__ = original
        del _original_inits[cls]
