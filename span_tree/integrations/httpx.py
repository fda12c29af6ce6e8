"""Opt-in httpx instrumentation: requests made inside a span carry W3C trace headers.

``instrument_client(client)`` adds a request hook to one ``httpx.Client`` or
``httpx.AsyncClient``; ``instrument_httpx()`` does it for every client created
afterwards. The receiving service continues the trace with
``span_tree.integrations.asgi.TraceMiddleware``.
"""

from __future__ import annotations

from typing import Any, TypeVar

import httpx

from span_tree.integrations._traceparent import trace_headers

ClientT = TypeVar("ClientT", httpx.Client, httpx.AsyncClient)

_original_inits: dict[type[Any], Any] = {}


def _inject(request: httpx.Request) -> None:
    for key, value in trace_headers().items():
        if key not in request.headers:  # the caller's own header wins
            request.headers[key] = value


async def _inject_async(request: httpx.Request) -> None:
    _inject(request)


def instrument_client(client: ClientT) -> ClientT:
    """Make ``client`` add ``traceparent``/``tracestate`` to requests sent inside a span.

    Args:
        client: an ``httpx.Client`` or ``httpx.AsyncClient``.

    Returns:
        The same client (so ``client = instrument_client(httpx.Client())`` reads well).
    """
    hook: Any = _inject_async if isinstance(client, httpx.AsyncClient) else _inject
    hooks: dict[str, list[Any]] = dict(client.event_hooks)
    if hook not in hooks["request"]:
        hooks["request"] = [*hooks["request"], hook]
        client.event_hooks = hooks
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
    """Undo ``instrument_httpx`` (clients already instrumented keep their hook)."""
    for cls, original in list(_original_inits.items()):
        cls.__init__ = original
        del _original_inits[cls]
