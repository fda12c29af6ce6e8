"""Distributed tracing: one trace across two processes through W3C traceparent.

The test process (frontend) and a uvicorn child process (backend, wrapped in
``TraceMiddleware``) both send their spans to one receiver; the store then holds one
trace with spans from both processes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

import span_tree
from span_tree.integrations.httpx import instrument_client, instrument_httpx, uninstrument_httpx
from span_tree.receiver import key_store
from span_tree.receiver._subprocess import ReceiverProcess, free_port

pytestmark = pytest.mark.slow

BACKEND = textwrap.dedent(
    """
    import sys

    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    import span_tree
    from span_tree.integrations.asgi import TraceMiddleware

    span_tree.configure(app="backend", console=False, jsonl=False, schedule_delay=0.05)

    async def hello(request):
        with span_tree.span("backend.work") as work:
            pass
        return JSONResponse({"trace_id": work.trace_id, "pid": __import__("os").getpid()})

    app = TraceMiddleware(Starlette(routes=[Route("/hello", hello)]))
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
    """
)


class Deployment:
    """A receiver, a backend process sending to it, and the frontend's key."""

    def __init__(self, store: str, key: str, backend_url: str) -> None:
        self.store = store
        self.key = key
        self.backend_url = backend_url


@pytest.fixture
def deployment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Deployment]:
    """Receiver + backend child processes; both stopped afterwards."""
    monkeypatch.setenv("SPANTREE_SPOOL_DIR", str(tmp_path / "frontend-spool"))
    store = str(tmp_path / "store")
    key = key_store(store).create("shop")
    receiver = ReceiverProcess(store)
    receiver.start()
    script = tmp_path / "backend.py"
    script.write_text(BACKEND)
    port = free_port()
    env = {
        **os.environ,
        "SPANTREE_ENDPOINT": receiver.url,
        "SPANTREE_API_KEY": key,
        "SPANTREE_SPOOL_DIR": str(tmp_path / "backend-spool"),
    }
    env.pop("PYTEST_CURRENT_TEST", None)
    env.pop("SPANTREE_STORE", None)
    backend = subprocess.Popen([sys.executable, str(script), str(port)], env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url, backend)
        span_tree.configure(
            app="frontend",
            endpoint=receiver.url,
            api_key=key,
            console=False,
            jsonl=False,
            store=None,
            schedule_delay=0.05,
        )
        yield Deployment(store, key, url)
    finally:
        backend.terminate()  # uvicorn exits cleanly; span_tree flushes at exit
        try:
            backend.wait(15)
        except subprocess.TimeoutExpired:
            backend.kill()
            backend.wait()
        span_tree.flush(10)
        receiver.stop()


def _wait_until_up(url: str, process: subprocess.Popen[bytes]) -> None:
    for _ in range(200):
        if process.poll() is not None:
            raise RuntimeError("backend exited")
        try:
            httpx.get(url + "/missing", timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise RuntimeError("backend did not start")


def _trace(store: str, trace_id: str, names: set[str]) -> list[Any]:
    """The trace's spans once all of ``names`` are stored (bounded wait)."""
    from span_tree.analytics import Store, TraceNotFound

    spans: list[Any] = []
    for _ in range(100):
        try:
            with Store(store) as opened:
                spans = opened.trace(trace_id)
        except TraceNotFound:
            spans = []
        if names <= {span.name for span in spans}:
            break
        span_tree.flush(1)
        time.sleep(0.1)
    return spans


def test_one_trace_spans_two_processes(deployment: Deployment) -> None:
    """An instrumented httpx call inside a span continues the trace in the backend."""
    client = instrument_client(httpx.Client(timeout=10))
    with span_tree.span("frontend.checkout") as checkout:
        answer = client.get(deployment.backend_url + "/hello").json()
    client.close()
    assert span_tree.flush(10)
    spans = _trace(deployment.store, checkout.trace_id, {"GET /hello", "backend.work"})
    by_name = {span.name: span for span in spans}
    server = by_name["GET /hello"]
    call = by_name["GET 127.0.0.1"]
    assert checkout.trace_id == answer["trace_id"]
    assert {"frontend.checkout", "GET 127.0.0.1", "GET /hello", "backend.work"} == set(by_name)
    assert (checkout.span_id, "client", call.span_id, "server", server.span_id) == (
        call.parent_id,
        call.kind,
        server.parent_id,
        server.kind,
        by_name["backend.work"].parent_id,
    )
    assert ("frontend", "backend", answer["pid"]) == (
        by_name["frontend.checkout"].app,
        server.app,
        server.pid,
    )
    assert {"shop"} == {span.namespace for span in spans}


def test_foreign_traceparent_keeps_the_w3c_trace_id(deployment: Deployment) -> None:
    """Concurrent requests with foreign traceparents (no tracestate) each join their trace."""
    hex_ids = [f"{index:x}" * 32 for index in range(1, 4)]
    answers: dict[str, Any] = {}

    def call(hex_id: str) -> None:
        header = f"00-{hex_id}-00f067aa0ba902b7-01"
        response = httpx.get(
            deployment.backend_url + "/hello", headers={"traceparent": header}, timeout=10
        )
        answers[hex_id] = response.json()

    threads = [threading.Thread(target=call, args=(hex_id,)) for hex_id in hex_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert hex_ids == [span_tree.w3c_trace_id(answers[h]["trace_id"]) for h in hex_ids]
    spans = _trace(deployment.store, hex_ids[0], {"GET /hello", "backend.work"})
    server = next(span for span in spans if span.name == "GET /hello")
    status = server.attributes["http.response.status_code"]
    assert ("00f067aa0ba902b7", 200) == (server.parent_id, status)


def test_global_instrumentation_and_no_header_outside_spans() -> None:
    """instrument_httpx() covers new clients; outside a span no header is added."""
    seen: list[dict[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append({k.lower(): v for k, v in self.headers.items()})
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    instrument_httpx()
    try:
        with httpx.Client() as client:
            with span_tree.span("caller") as caller:
                client.get(url)
            client.get(url)
    finally:
        uninstrument_httpx()
        server.shutdown()
        server.server_close()
        thread.join(5)
    assert (f"spantree={caller.trace_id}", False) == (
        seen[0].get("tracestate"),
        "traceparent" in seen[1],
    )
