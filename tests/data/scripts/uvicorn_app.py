"""A traced ASGI app under uvicorn, for the SIGTERM test: `python uvicorn_app.py PORT STORE`.

Prints "ready" on stderr once uvicorn listens; SIGTERM is uvicorn's to handle (graceful
shutdown), after which the process exits normally: span_tree's exit flush must run.
"""

from __future__ import annotations

import sys

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

import span_tree
from span_tree.integrations.asgi import TraceMiddleware

PORT = int(sys.argv[1])
span_tree.configure(console=False, jsonl=False, store=sys.argv[2], schedule_delay=60)


async def work(request: Request) -> PlainTextResponse:
    with span_tree.span("inner-work"):
        return PlainTextResponse("ok")


class Ready(uvicorn.Server):
    """Says "ready" once listening."""

    async def startup(self, sockets: object = None) -> None:
        await super().startup(sockets=sockets)  # type: ignore[arg-type]
        print("ready", file=sys.stderr, flush=True)


app = TraceMiddleware(Starlette(routes=[Route("/work", work)]))
Ready(uvicorn.Config(app, host="127.0.0.1", port=PORT, log_level="warning")).run()
