"""Units of the HTTP integrations: trace context from foreign callers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route

import span_tree
from span_tree.integrations import remote_parent
from span_tree.integrations.asgi import TraceMiddleware, fold_path
from span_tree.sinks.memory import MemorySink


def test_foreign_traceparent_maps_to_the_deterministic_ksuid() -> None:
    """A traceparent without tracestate continues trace_id_from_w3c(hex), whatever the time."""
    hex_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    header = {"traceparent": f"00-{hex_id}-00f067aa0ba902b7-01"}
    expected = (span_tree.trace_id_from_w3c(hex_id), "00f067aa0ba902b7")
    assert expected == remote_parent(header)
    assert expected == remote_parent(header)


def test_tracestate_of_another_trace_is_not_trusted() -> None:
    """A spantree tracestate whose payload differs from traceparent's id falls back to the map."""
    hex_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    other = span_tree.new_trace_id()
    headers = {
        "traceparent": f"00-{hex_id}-00f067aa0ba902b7-01",
        "tracestate": f"vendor=x,spantree={other}",
    }
    assert (span_tree.trace_id_from_w3c(hex_id), "00f067aa0ba902b7") == remote_parent(headers)


def test_store_trace_by_w3c_id_finds_every_part_of_a_foreign_trace(tmp_path: Path) -> None:
    """Two parts continued from one foreign traceparent are one stored trace, found by hex."""
    from span_tree.analytics import Store

    span_tree.configure(store=str(tmp_path), console=False, jsonl=False, schedule_delay=0.05)
    hex_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    parent = remote_parent({"traceparent": f"00-{hex_id}-00f067aa0ba902b7-01"})
    for name in ("first request", "second request"):
        with (
            span_tree.Span(name, kind="server", remote_parent=parent),
            span_tree.span(f"{name} work"),
        ):
            pass
    assert span_tree.flush(10)
    with Store(str(tmp_path)) as store:
        names = sorted(span.name for span in store.trace(hex_id))
    assert [
        "first request",
        "first request work",
        "second request",
        "second request work",
    ] == names


async def _serve(app: Any, *paths: str) -> list[int]:
    """Send GET requests to an ASGI app in process; their status codes."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://shop.test") as client:
        return [(await client.get(path)).status_code for path in paths]


def _server_spans(sink: MemorySink) -> list[tuple[str, str, Any, Any]]:
    assert span_tree.flush(5)
    return sorted(
        (
            span.name,
            span.status,
            span.attributes.get("http.route"),
            span.attributes.get("http.response.status_code"),
        )
        for span in sink.spans
        if span.kind == "server"
    )


async def test_route_templates_through_mounts(memory_sink: MemorySink) -> None:
    """Mount paths (with parameters) join the route template; a mounted app ends in {path}."""

    async def order(request: Request) -> Response:
        return PlainTextResponse("ok")

    async def files(scope: Any, receive: Any, send: Any) -> None:
        await PlainTextResponse("file")(scope, receive, send)

    app = TraceMiddleware(
        Starlette(
            routes=[
                Mount("/tenants/{tenant}", routes=[Route("/orders/{order_id:int}", order)]),
                Mount("/static", app=files),
            ]
        )
    )
    assert [200, 200, 404] == await _serve(
        app, "/tenants/acme/orders/7", "/static/css/site.css", "/nothing/42"
    )
    assert [
        ("GET", "succeeded", None, 404),
        ("GET /static/{path}", "succeeded", "/static/{path}", 200),
        (
            "GET /tenants/{tenant}/orders/{order_id}",
            "succeeded",
            "/tenants/{tenant}/orders/{order_id}",
            200,
        ),
    ] == _server_spans(memory_sink)


async def test_plain_asgi_app_folds_id_segments(memory_sink: MemorySink) -> None:
    """Without a router the name is the path with numbers, UUIDs and long hex ids folded."""

    async def plain(scope: Any, receive: Any, send: Any) -> None:
        status = 503 if scope["path"].startswith("/down") else 200
        await PlainTextResponse("x", status_code=status)(scope, receive, send)

    paths = (
        "/users/42/avatar",
        "/users/5f3a9b2c-1d2e-4f5a-9b8c-7d6e5f4a3b2c/avatar",
        "/blobs/4bf92f3577b34da6a3ce",
        "/down/1",
    )
    assert [200, 200, 200, 503] == await _serve(TraceMiddleware(plain), *paths)
    assert span_tree.flush(5)
    spans = {span.name: span for span in memory_sink.spans}
    assert (
        ["GET /blobs/{id}", "GET /down/{id}", "GET /users/{id}/avatar"],
        ("failed", "HTTP 503", "Service Unavailable"),
    ) == (
        sorted(spans),
        (
            spans["GET /down/{id}"].status,
            spans["GET /down/{id}"].error_type,
            spans["GET /down/{id}"].error_message,
        ),
    )


async def test_name_callback_sees_the_routed_scope(memory_sink: MemorySink) -> None:
    """A custom name= is computed when the request ends, with the matched route in the scope."""

    async def hello(request: Request) -> Response:
        return PlainTextResponse("hi")

    def name(scope: Any) -> str:
        return f"hello via {scope['route'].name}"

    app = TraceMiddleware(Starlette(routes=[Route("/hello", hello, name="greet")]), name=name)
    assert [200] == await _serve(app, "/hello")
    assert [("hello via greet", "succeeded", None, 200)] == _server_spans(memory_sink)


async def test_handler_location_and_escaping_exception(memory_sink: MemorySink) -> None:
    """The server span points at the route's handler; an escaping exception beats HTTP 500."""

    async def broken(request: Request) -> Response:
        raise RuntimeError("boom")

    app = TraceMiddleware(Starlette(routes=[Route("/broken", broken)]))
    assert [500] == await _serve(app, "/broken")
    assert span_tree.flush(5)
    (server,) = [span for span in memory_sink.spans if span.kind == "server"]
    assert ("failed", "RuntimeError", "boom", 500, "broken", broken.__code__.co_firstlineno) == (
        server.status,
        server.error_type,
        server.error_message,
        server.attributes["http.response.status_code"],
        server.function.rsplit(".", 1)[-1] if server.function else None,
        server.line,
    )


def test_fold_path_keeps_words() -> None:
    """Words, short hex-like words and version segments stay; ids fold."""
    assert "/api/v2/cafe/orders/{id}/beef" == fold_path("/api/v2/cafe/orders/123/beef")
