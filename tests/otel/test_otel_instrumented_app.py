"""A real auto-instrumented service (FastAPI + SQLAlchemy over sqlite, the stock OTel SDK and
OTLP/HTTP exporter, configured by the standard variables only) into `spantree serve`,
then read back through `spantree sql`: the tree, the error group and the percentiles."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest
from support.otlp import OtlpReceiver, port_in_range, spantree, sql_rows

pytestmark = pytest.mark.slow

APP = """
import contextlib, sys
import uvicorn
from fastapi import FastAPI, HTTPException
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from sqlalchemy import create_engine, text

provider = TracerProvider(resource=Resource.create())  # OTEL_SERVICE_NAME, ..._ATTRIBUTES
provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))  # OTEL_EXPORTER_OTLP_*
trace.set_tracer_provider(provider)

engine = create_engine("sqlite:///" + sys.argv[2])
SQLAlchemyInstrumentor().instrument(engine=engine)
with engine.begin() as db:
    db.execute(text("create table orders (id integer primary key, total real)"))
    db.execute(text("insert into orders values (1, 9.5), (2, 20.0), (3, 7.25)"))

@contextlib.asynccontextmanager
async def lifespan(app):
    yield
    provider.shutdown()  # uvicorn runs this on SIGTERM, then dies by the signal


app = FastAPI(lifespan=lifespan)


@app.get("/orders/{order_id}")
def get_order(order_id: int) -> dict:
    with engine.connect() as db:
        row = db.execute(text("select total from orders where id = :id"), {"id": order_id}).first()
    if row is None:
        raise HTTPException(status_code=404, detail="no such order")
    if order_id == 3:
        raise RuntimeError(f"order {order_id} is corrupt")
    return {"id": order_id, "total": row[0]}


FastAPIInstrumentor.instrument_app(app)
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


def wait_until_up(url: str, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """Poll ``url`` until the app answers 200 (not another server on the port)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "the app exited"
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError("the app did not start")


def test_auto_instrumented_fastapi_sqlalchemy_app(tmp_path: Path) -> None:
    """Its requests are traces with SQL children, its crash an error group, its timings stats."""
    script = tmp_path / "shop_app.py"
    script.write_text(textwrap.dedent(APP))
    with OtlpReceiver(str(tmp_path / "store")) as receiver:
        port = port_in_range()
        env = {
            **os.environ,
            "OTEL_SERVICE_NAME": "shop-api",
            "OTEL_RESOURCE_ATTRIBUTES": "service.version=4.2,deployment.environment.name=stage",
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
            "OTEL_EXPORTER_OTLP_HEADERS": f"x-api-key={receiver.key}",
            "OTEL_BSP_SCHEDULE_DELAY": "200",
        }
        env.pop("PYTEST_CURRENT_TEST", None)
        app = subprocess.Popen(
            [sys.executable, str(script), str(port), str(tmp_path / "shop.db")],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            wait_until_up(base + "/docs", app)
            statuses = [httpx.get(f"{base}/orders/{i}", timeout=10).status_code for i in (1, 2)]
            statuses += [httpx.get(f"{base}/orders/{i}", timeout=10).status_code for i in (9, 3)]
            statuses += [httpx.get(f"{base}/orders/1", timeout=10).status_code for _ in range(6)]
        finally:
            app.send_signal(signal.SIGTERM)  # uvicorn stops; the SDK flushes on shutdown
            _, stderr = app.communicate(timeout=30)
        assert [200, 200, 404, 500] + [200] * 6 == statuses
        assert app.returncode in (0, -signal.SIGTERM), stderr.decode()[-2000:]

        route = "GET /orders/{order_id}"
        requests = sql_rows(
            receiver.store,
            "select trace_id, span_id, status, kind, app, app_version, tags['env'] as env"
            f" from spans where name = '{route}' order by start_time",
        )
        assert 10 == len(requests)
        assert {("server", "shop-api", "4.2", "stage")} == {
            (row["kind"], row["app"], row["app_version"], row["env"]) for row in requests
        }
        assert ["succeeded"] * 3 + ["failed"] + ["succeeded"] * 6 == [
            row["status"] for row in requests
        ]

        first = requests[0]
        children = sql_rows(
            receiver.store,
            "select name, kind, parent_id, attributes from spans"
            f" where trace_id = '{first['trace_id']}' and parent_id = '{first['span_id']}'"
            " and kind = 'client'",
        )
        database = str(tmp_path / "shop.db")
        assert ["connect", f"select {database}"] == sorted(row["name"] for row in children)
        select = next(row for row in children if row["name"].startswith("select"))
        assert "select total from orders where id = ?" == select["attributes"]["db.statement"]

        shown = spantree("trace", first["trace_id"], "--store", receiver.store)
        assert 0 == shown.returncode, shown.stderr
        assert route in shown.stdout and f"select {database}" in shown.stdout

        errors = sql_rows(
            receiver.store,
            "select error_type, sample_message, count, handled, span_name from error_groups"
            " where app = 'shop-api' order by error_type",
        )
        # The crash on the server span (fatal: it escaped the request), and the ASGI span
        # that sent the 500 (OTel marks it ERROR without an exception event): handled,
        # since the server span it sits in ended with another error (the crash).
        assert [
            ["HTTP 500", "", 1, True, f"{route} http send"],
            ["RuntimeError", "order 3 is corrupt", 1, False, route],
        ] == [list(row.values()) for row in errors]

        stats = sql_rows(
            receiver.store,
            "select count, error_count, p50_us <= p90_us and p90_us <= p99_us as ordered,"
            f" p50_us > 0 as timed from span_stats where name = '{route}'",
        )
        assert [[10, 1, True, True]] == [list(row.values()) for row in stats]
