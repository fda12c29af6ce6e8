"""Two real services for tests/integrations/test_http_services.py, each run under uvicorn.

``python http_services.py orders PORT INVENTORY_URL``: a FastAPI app (TraceMiddleware
added with ``add_middleware``) whose order route loads from a "database" span and calls
the inventory service over an instrumented httpx client.

``python http_services.py inventory PORT RAW_PORT``: a Starlette app (wrapped in
TraceMiddleware) and, in the same process, a plain ASGI app without routes.

Spans go to ``SPANTREE_STORE``; the flush interval is long, so what reaches the store is
what the exit path (SIGTERM from the test) writes.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import uvicorn

import span_tree
from span_tree.integrations.asgi import TraceMiddleware
from span_tree.integrations.httpx import instrument_client

log = logging.getLogger("shop")


def orders_app(inventory_url: str) -> Any:
    from fastapi import FastAPI, HTTPException
    from fastapi.responses import JSONResponse
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    app = FastAPI()
    app.add_middleware(TraceMiddleware)
    client = instrument_client(httpx.AsyncClient(base_url=inventory_url, timeout=30))

    @span_tree.span("db.load_order")
    def load_order(order_id: int) -> dict[str, int]:
        if order_id % 5 == 0:
            raise KeyError(f"order {order_id}")
        return {"order_id": order_id}

    @app.get("/orders/{order_id}")
    async def get_order(order_id: int) -> dict[str, Any]:
        try:
            order = load_order(order_id)
        except KeyError:
            log.warning("order %s not found", order_id)
            raise HTTPException(status_code=404, detail="no such order") from None
        log.info("order %s loaded, asking inventory", order_id)
        stock = await client.get(f"/items/{order_id}")
        log.info("inventory answered %s", stock.status_code)
        return {"order": order, "stock": stock.status_code}

    @app.get("/crash/{n}")
    async def crash(n: int) -> None:
        raise RuntimeError(f"crash number {n}")

    @app.get("/unavailable")
    async def unavailable() -> JSONResponse:
        return JSONResponse({"error": "maintenance"}, status_code=503)

    @app.get("/slow/{ms}")
    async def slow(ms: int) -> dict[str, int]:
        await asyncio.sleep(ms / 1000)
        return {"slept": ms}

    @app.get("/drain/{ms}")
    async def drain(ms: int) -> dict[str, int]:
        # Tell the test this request is in flight (it sends SIGTERM once all are).
        (Path(os.environ["HTTP_SERVICES_MARKERS"]) / str(uuid.uuid4())).touch()
        await asyncio.sleep(ms / 1000)
        return {"slept": ms}

    async def user(request: Any) -> PlainTextResponse:
        return PlainTextResponse(str(request.path_params["user_id"]))

    app.mount("/admin", Starlette(routes=[Route("/users/{user_id:int}", user)]))
    return app


def inventory_app() -> Any:
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def item(request: Any) -> JSONResponse:
        item_id = request.path_params["item_id"]
        log.info("stock lookup for %s", item_id)
        if item_id % 3 == 0:
            return JSONResponse({"error": "warehouse offline"}, status_code=503)
        return JSONResponse({"item": item_id, "stock": 3})

    return TraceMiddleware(Starlette(routes=[Route("/items/{item_id:int}", item)]))


async def raw_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A plain ASGI app: no router, no route templates."""
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"raw"})


async def serve(*servers: uvicorn.Server) -> None:
    await asyncio.gather(*(server.serve() for server in servers))


def main() -> None:
    role, port = sys.argv[1], int(sys.argv[2])
    logging.basicConfig(level=logging.INFO)
    span_tree.configure(app=role, console=False, jsonl=False, schedule_delay=60)

    def server(app: Any, port: int) -> uvicorn.Server:
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        return uvicorn.Server(config)

    if role == "orders":
        uvicorn_servers = [server(orders_app(sys.argv[3]), port)]
    else:
        uvicorn_servers = [
            server(inventory_app(), port),
            server(TraceMiddleware(raw_app), int(sys.argv[3])),
        ]
    asyncio.run(serve(*uvicorn_servers))


if __name__ == "__main__":
    main()
