"""Real services (issue 13): FastAPI and Starlette on uvicorn, called over httpx.

One workload runs once per module: the test process (app ``client``) calls a FastAPI
``orders`` service, which calls a Starlette ``inventory`` service; a plain ASGI app
without routes runs beside inventory; foreign callers send bare W3C ``traceparent``
headers. Both services flush only at exit (the test stops them with SIGTERM while
requests are still in flight). Each test then reads the store through the ``spantree``
CLI in a subprocess and checks what a user would read.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

import span_tree
from span_tree.integrations import trace_headers
from span_tree.integrations.httpx import instrument_client

pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).parents[1] / "data" / "scripts" / "http_services.py"
SPANTREE = str(Path(sys.executable).parent / "spantree")
PORTS = range(18400, 18500)  # this suite's loopback port range
FOREIGN_HEX = "4bf92f3577b34da6a3ce929d0e0e4736"
DRAINED = 6  # requests in flight when SIGTERM arrives
log = logging.getLogger("client")


@dataclass
class Workload:
    """What the module's workload did, and where its spans are."""

    store: str
    checkout_traces: dict[int, str] = field(default_factory=dict)
    manual_trace: str = ""
    drained: list[int] = field(default_factory=list)
    exit_codes: list[int | None] = field(default_factory=list)


def _free_ports(count: int) -> list[int]:
    found = []
    for port in PORTS:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        found.append(port)
        if len(found) == count:
            return found
    raise RuntimeError("no free port in 18400-18499")


def _wait_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    """Wait for the port to accept connections (no HTTP request: it would be a span)."""
    for _ in range(300):
        if process.poll() is not None:
            raise RuntimeError(f"service on port {port} exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


def _run_workload(store: str, orders: str, inventory: str, raw: str) -> Workload:
    done = Workload(store)
    client = instrument_client(httpx.Client(base_url=orders, timeout=30))
    for order_id in range(1, 13):
        with span_tree.span("client.checkout") as checkout:
            assert client.get(f"/orders/{order_id}").status_code in (200, 404)
        done.checkout_traces[order_id] = checkout.trace_id
    with span_tree.span("client.manual") as manual:
        # A caller without a client span (headers passed by hand): its remote child
        # starts at seq 1 in the callee, yet must sit between these two log lines.
        log.warning("before the call")
        httpx.get(orders + "/orders/2", headers=trace_headers(), timeout=30)
        log.warning("after the call")
    done.manual_trace = manual.trace_id
    for n in (1, 2):
        # Its own connection: uvicorn closes a connection whose request raised.
        assert 500 == httpx.get(f"{orders}/crash/{n}", timeout=30).status_code
    assert 503 == client.get("/unavailable").status_code
    assert 404 == client.get("/nope/123").status_code
    for user in (7, 8):
        assert 200 == client.get(f"/admin/users/{user}").status_code
    parts = "/things/123/parts/5f3a9b2c-1d2e-4f5a-9b8c-7d6e5f4a3b2c"
    assert 200 == httpx.get(raw + parts, timeout=30).status_code
    # A foreign caller: the same bare traceparent in two different seconds, to two services.
    foreign = {"traceparent": f"00-{FOREIGN_HEX}-00f067aa0ba902b7-01"}
    assert 200 == httpx.get(orders + "/orders/1", headers=foreign, timeout=30).status_code
    time.sleep(1.1)
    assert 200 == httpx.get(inventory + "/items/1", headers=foreign, timeout=30).status_code
    # One slow call among quick ones of the same route.
    slow = threading.Thread(target=lambda: client.get("/slow/2000"))
    slow.start()
    for _ in range(19):
        client.get("/slow/1")
    slow.join()
    client.close()
    return done


@pytest.fixture(scope="module")
def workload(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workload]:
    """Run the services and the workload; stop the services with SIGTERM mid-request."""
    root = tmp_path_factory.mktemp("http")
    store = str(root / "store")
    orders_port, inventory_port, raw_port = _free_ports(3)
    markers = root / "in-flight"
    markers.mkdir()
    env = {
        **os.environ,
        "SPANTREE_STORE": store,
        "SPANTREE_SPOOL_DIR": str(root / "spool"),
        "HTTP_SERVICES_MARKERS": str(markers),
    }
    env.pop("PYTEST_CURRENT_TEST", None)
    env.pop("SPANTREE_ENDPOINT", None)
    inventory_url = f"http://127.0.0.1:{inventory_port}"
    processes = [
        subprocess.Popen(
            [sys.executable, str(SCRIPT), "inventory", str(inventory_port), str(raw_port)],
            env=env,
        ),
        subprocess.Popen(
            [sys.executable, str(SCRIPT), "orders", str(orders_port), inventory_url], env=env
        ),
    ]
    try:
        for port, process in (
            (inventory_port, processes[0]),
            (raw_port, processes[0]),
            (orders_port, processes[1]),
        ):
            _wait_listening(port, process)
        span_tree.configure(
            app="client", store=store, console=False, jsonl=False, schedule_delay=0.05
        )
        # An earlier test's dictConfig may have disabled loggers that existed then.
        log.disabled = False
        log.setLevel(logging.INFO)
        done = _run_workload(
            store,
            f"http://127.0.0.1:{orders_port}",
            inventory_url,
            f"http://127.0.0.1:{raw_port}",
        )
        done.drained = _sigterm_while_busy(f"http://127.0.0.1:{orders_port}", processes, markers)
        done.exit_codes = [process.returncode for process in processes]
        assert span_tree.flush(10)
        yield done
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()


def _sigterm_while_busy(
    orders: str, processes: list[subprocess.Popen[bytes]], markers: Path
) -> list[int]:
    """Send SIGTERM to both services while DRAINED requests are in flight; their statuses."""
    statuses: list[int] = []

    def call() -> None:
        statuses.append(httpx.get(orders + "/drain/1000", timeout=30).status_code)

    threads = [threading.Thread(target=call) for _ in range(DRAINED)]
    for thread in threads:
        thread.start()
    for _ in range(600):  # until every request is inside its handler
        if len(list(markers.iterdir())) == DRAINED:
            break
        time.sleep(0.05)
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for thread in threads:
        thread.join(30)
    for process in processes:
        process.wait(30)
    return statuses


def spantree(*args: str, store: str) -> str:
    """Run the ``spantree`` CLI in a subprocess; its stdout (it must succeed)."""
    result = subprocess.run(
        [SPANTREE, *args, "--store", store],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert 0 == result.returncode, result.stderr
    return result.stdout


def sql_rows(query: str, store: str) -> list[dict[str, str]]:
    """``spantree sql QUERY --format csv`` as dicts."""
    return list(csv.DictReader(io.StringIO(spantree("sql", query, "--format", "csv", store=store))))


def test_sigterm_under_uvicorn_keeps_every_span(workload: Workload) -> None:
    """Requests in flight at SIGTERM are answered, and every server span reaches the store."""
    rows = sql_rows(
        "select app, count(*) as n from spans where kind = 'server' group by app order by app",
        workload.store,
    )
    drained = sql_rows(
        "select count(*) as n from spans where name = 'GET /drain/{ms}' and status = 'succeeded'",
        workload.store,
    )
    assert ([200] * DRAINED, [-signal.SIGTERM] * 2) == (workload.drained, workload.exit_codes)
    # inventory: 12 calls from orders (10 checkouts whose order exists, the manual call,
    # the foreign one) + the foreign caller + the raw app; orders: 12 checkouts + manual
    # + 2 crashes + unavailable + unmatched + 2 admin + foreign + 20 slow + drained.
    assert [
        {"app": "inventory", "n": str(12 + 1 + 1)},
        {"app": "orders", "n": str(12 + 1 + 2 + 1 + 1 + 2 + 1 + 20 + DRAINED)},
    ] == rows
    assert [{"n": str(DRAINED)}] == drained


def test_server_spans_are_named_by_route_template(workload: Workload) -> None:
    """Route templates as the framework matched them (mounts included); raw path in url.path."""
    rows = sql_rows(
        "select name, count(*) as n, count(distinct attributes->>'$.\"url.path\"') as paths,"
        " any_value(attributes->>'$.\"http.route\"') as route"
        " from spans where kind = 'server' and name not like '%/drain/%'"
        " group by name order by name",
        workload.store,
    )
    assert [
        {"name": "GET", "n": "1", "paths": "1", "route": ""},
        {
            "name": "GET /admin/users/{user_id}",
            "n": "2",
            "paths": "2",
            "route": "/admin/users/{user_id}",
        },
        {"name": "GET /crash/{n}", "n": "2", "paths": "2", "route": "/crash/{n}"},
        {"name": "GET /items/{item_id}", "n": "13", "paths": "10", "route": "/items/{item_id}"},
        {"name": "GET /orders/{order_id}", "n": "14", "paths": "12", "route": "/orders/{order_id}"},
        {"name": "GET /slow/{ms}", "n": "20", "paths": "2", "route": "/slow/{ms}"},
        {"name": "GET /things/{id}/parts/{id}", "n": "1", "paths": "1", "route": ""},
        {"name": "GET /unavailable", "n": "1", "paths": "1", "route": "/unavailable"},
    ] == rows


def test_slow_compares_a_request_with_its_route(workload: Workload) -> None:
    """`spantree slow` over one route: the 2 s call is the one over that route's p95."""
    out = spantree("slow", "--name", "GET /slow/{ms}", "--format", "csv", store=workload.store)
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [("GET /slow/{ms}", True)] == [
        (row["name"], int(row["duration_us"]) >= 2_000_000) for row in rows
    ]


def test_5xx_fails_the_span_and_4xx_is_an_attribute(workload: Workload) -> None:
    """503 without exception: failed, error HTTP 503; 404: succeeded with its status code."""
    rows = sql_rows(
        "select app, kind, name, status, error_type, error_message,"
        " attributes->>'$.\"http.response.status_code\"' as code, count(*) as n"
        " from spans where kind in ('server', 'client')"
        " and name in ('GET /unavailable', 'GET /items/{item_id}', 'GET /orders/{order_id}',"
        " 'GET 127.0.0.1') group by all order by all",
        workload.store,
    )
    table = [
        (r["app"], r["kind"], r["name"], r["status"], r["error_type"], r["code"], r["n"])
        for r in rows
    ]
    assert [
        # the test's own client spans (inside client.checkout): a 404 is no failure
        ("client", "client", "GET 127.0.0.1", "succeeded", "", "200", "10"),
        ("client", "client", "GET 127.0.0.1", "succeeded", "", "404", "2"),
        # items 3, 6, 9 and 12 are in an offline warehouse
        ("inventory", "server", "GET /items/{item_id}", "succeeded", "", "200", "9"),
        ("inventory", "server", "GET /items/{item_id}", "failed", "HTTP 503", "503", "4"),
        # orders' client spans saw those 503s; its routes still answered 200
        ("orders", "client", "GET 127.0.0.1", "succeeded", "", "200", "8"),
        ("orders", "client", "GET 127.0.0.1", "failed", "HTTP 503", "503", "4"),
        ("orders", "server", "GET /orders/{order_id}", "succeeded", "", "200", "12"),
        ("orders", "server", "GET /orders/{order_id}", "succeeded", "", "404", "2"),
        ("orders", "server", "GET /unavailable", "failed", "HTTP 503", "503", "1"),
    ] == sorted(table, key=lambda row: (row[0], row[1], row[2], row[5]))
    assert {"Service Unavailable"} == {
        r["error_message"] for r in rows if r["error_type"] == "HTTP 503"
    }


def test_errors_caught_higher_up_are_one_handled_group(workload: Workload) -> None:
    """`spantree errors`: the caught KeyError is one handled group counting occurrences."""
    out = spantree("errors", "--format", "csv", "--limit", "50", store=workload.store)
    groups = {
        (row["app"], row["error_type"], row["handled"]): (row["count"], row["trace_count"])
        for row in csv.DictReader(io.StringIO(out))
    }
    assert {
        # raised in db.load_order, caught by the route (which answered 404)
        ("orders", "KeyError", "true"): ("2", "2"),
        # escaped the request: fatal, once per request (not once per span it failed)
        ("orders", "RuntimeError", "false"): ("2", "2"),
        ("orders", "HTTP 503", "false"): ("1", "1"),
        # the inventory's 503 is fatal there; orders' client span saw it and carried on
        ("inventory", "HTTP 503", "false"): ("4", "4"),
        ("orders", "HTTP 503", "true"): ("4", "4"),
    } == groups


def test_foreign_traceparent_is_one_trace_found_by_its_w3c_id(workload: Workload) -> None:
    """A bare traceparent seen in two seconds by two services: `spantree trace HEX` shows both."""
    out = spantree("trace", FOREIGN_HEX, store=workload.store)
    traces = sql_rows(
        "select count(distinct trace_id) as n from spans where parent_id = '00f067aa0ba902b7'",
        workload.store,
    )
    assert [{"n": "1"}] == traces
    assert (True, True, span_tree.trace_id_from_w3c(FOREIGN_HEX)) == (
        "GET /orders/{order_id}" in out,
        "GET /items/{item_id}" in out,
        sql_rows(
            "select distinct trace_id from spans where parent_id = '00f067aa0ba902b7'",
            workload.store,
        )[0]["trace_id"],
    )


def test_trace_orders_a_remote_child_by_time(workload: Workload) -> None:
    """The callee's subtree sits between the caller's log lines around the call."""
    out = spantree("trace", workload.manual_trace, store=workload.store)
    lines = [line for line in out.splitlines() if line.strip()]

    def index(text: str) -> int:
        return next(n for n, line in enumerate(lines) if text in line)

    assert index("before the call") < index("GET /orders/{order_id}") < index("after the call")


def test_checkout_trace_spans_three_processes_in_causal_order(workload: Workload) -> None:
    """client span > orders server span > its log lines and inventory call, in order."""
    out = spantree("trace", workload.checkout_traces[1], store=workload.store)
    lines = [line for line in out.splitlines() if line.strip()]
    order = [
        "client.checkout",
        "GET 127.0.0.1",
        "GET /orders/{order_id}",
        "db.load_order",
        "order 1 loaded, asking inventory",
        "GET /items/{item_id}",
        "stock lookup for 1",
        "inventory answered 200",
    ]
    positions = [next(n for n, line in enumerate(lines) if text in line) for text in order]
    assert sorted(positions) == positions


def test_http_attributes_on_server_and_client_spans(workload: Workload) -> None:
    """OpenTelemetry's HTTP attribute names on both sides of a call."""
    out = spantree(
        "sql",
        "select kind, attributes from spans where app = 'orders'"
        " and (name = 'GET /orders/{order_id}' or kind = 'client')"
        " and attributes->>'$.\"url.path\"' in ('/orders/1', '/items/1')"
        " and trace_id = ? order by kind".replace("?", f"'{workload.checkout_traces[1]}'"),
        "--format",
        "json",
        store=workload.store,
    )
    rows = {row["kind"]: row["attributes"] for row in json.loads(out)}
    server, client = rows["server"], rows["client"]
    assert {
        "http.request.method": "GET",
        "http.route": "/orders/{order_id}",
        "http.response.status_code": 200,
        "url.path": "/orders/1",
        "url.scheme": "http",
        "server.address": "127.0.0.1",
        "client.address": "127.0.0.1",
        "user_agent.original": f"python-httpx/{httpx.__version__}",
    } == {key: value for key, value in server.items() if key != "server.port"}
    assert {
        "http.request.method": "GET",
        "http.response.status_code": 200,
        "url.path": "/items/1",
        "server.address": "127.0.0.1",
        "user_agent.original": f"python-httpx/{httpx.__version__}",
    } == {key: value for key, value in client.items() if key not in ("server.port", "url.full")}
    assert (int, True) == (type(server["server.port"]), client["url.full"].endswith("/items/1"))


def test_stored_tracebacks_hide_span_tree_frames(workload: Workload) -> None:
    """Tracebacks of failed spans run through the user's code, not span_tree's wrappers."""
    rows = sql_rows(
        "select name, error_traceback from spans"
        " where name in ('GET /crash/{n}', 'db.load_order') and status = 'failed'",
        workload.store,
    )
    shown = {
        (
            row["name"],
            "span_tree/_span.py" in row["error_traceback"],
            "span_tree/integrations/" in row["error_traceback"],
            "in crash" in row["error_traceback"] or "in load_order" in row["error_traceback"],
        )
        for row in rows
    }
    assert {("GET /crash/{n}", False, False, True), ("db.load_order", False, False, True)} == shown


def test_health_judges_each_service_by_its_own_requests(workload: Workload) -> None:
    """`spantree health`: the called inventory has its own rate; caught errors do not warn."""
    out = spantree("health", "--format", "csv", store=workload.store)
    rows = {
        row["app"]: (row["level"], row["traces"], row["failed"], row["open_groups"])
        for row in csv.DictReader(io.StringIO(out))
    }
    assert {
        # 12 checkouts + the manual call; nothing escaped them
        "client": ("OK", "13", "0", "0"),
        # 4 of its 14 requests answered 503
        "inventory": ("WARN", "14", "4", "1"),
        # 2 crashes + the 503 route (the caught KeyError and the 503s from inventory
        # that orders carried on from are handled)
        "orders": ("WARN", str(12 + 1 + 2 + 1 + 1 + 2 + 1 + 20 + DRAINED), "3", "2"),
    } == rows
