"""span-tree out over OTLP (OtlpSink) into a real `spantree serve`: round trip, spool, drops."""

from __future__ import annotations

import glob
import logging
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from support.otlp import OtlpReceiver, port_in_range, sql_rows

import span_tree
from span_tree._record import FinishedSpan
from span_tree.otel import OtlpSink
from span_tree.receiver import key_store
from span_tree.receiver._subprocess import ReceiverProcess
from span_tree.storage.schema import table_to_records
from span_tree.testing import capture_spans

pytestmark = pytest.mark.slow


def stored(store: str) -> list[FinishedSpan]:
    """Every span row of a store, without the write stamp (it differs per writer)."""
    rows = []
    for path in sorted(glob.glob(f"{store}/spans/**/*.parquet", recursive=True)):
        rows.extend(table_to_records(pq.read_table(path)))
    return sorted(row._replace(written_at=None) for row in rows)


def workload() -> None:
    """A realistic little service: nested spans, threads, logs, a handled and a failed error."""
    log = logging.getLogger("shop.orders")
    with span_tree.span("handle_order", order_id=42, items=["a", "b"], meta={"x": None}):
        log.info("received order %d", 42, extra={"channel": "web"})
        with span_tree.span("db.query", table="orders", rows=3):
            log.debug("SELECT * FROM orders")
        worker = threading.Thread(target=lambda: span_tree.span("in thread")(lambda: None)())
        worker.start()
        worker.join()
        try:
            raise TimeoutError("cache slow")
        except TimeoutError:
            log.exception("cache lookup failed")
        try:
            with span_tree.span("charge", kind="client", amount=9.99):
                raise ValueError("card 4242 declined")
        except ValueError:
            log.warning("charge failed, order kept")


def test_round_trip_gives_the_same_trees_as_the_parquet_sink(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """span-tree -> OtlpSink -> /v1/traces -> store holds what the direct Parquet sink wrote."""
    direct = str(tmp_path / "direct")
    with OtlpReceiver(str(tmp_path / "received")) as receiver:
        key = key_store(receiver.store).create("default")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", f"x-api-key={key}")
        span_tree.configure(
            console=False,
            jsonl=False,
            store=direct,
            otlp_endpoint=receiver.url,
            tags={"env": "ci", "team": "payments"},
            app="shop",
            app_version="3.1",
        )
        workload()
        assert span_tree.shutdown(timeout=20)
        sink_stats = [s for s in span_tree.stats()["sinks"] if s["name"] == "OtlpSink"]
    expected = stored(direct)
    assert ["charge", "db.query", "handle_order", "in thread"] == sorted(s.name for s in expected)
    assert expected == stored(receiver.store)
    assert [(0, 0, 4)] == [
        (s["rejected_spans"], s["dropped_spans"], s["sent_spans"]) for s in sink_stats
    ]


def test_spans_wait_in_the_spool_until_the_backend_is_up(tmp_path: Path) -> None:
    """Backend down: batches are spooled (nothing lost); once it is up, force_flush sends them."""
    store = str(tmp_path / "store")
    key = key_store(store).create("default")
    port = port_in_range()
    sink = OtlpSink(
        f"http://127.0.0.1:{port}",
        api_key=key,
        spool_dir=str(tmp_path / "spool"),
        max_retries=0,
        max_backoff=0.2,
    )
    with capture_spans() as spans:
        workload()
    sink.export(list(spans))
    assert (4, 0) == (sink.stats()["spooled_spans"], sink.stats()["sent_spans"])
    receiver = ReceiverProcess(store, port=port)
    receiver.start()
    try:
        assert sink.force_flush(20)
    finally:
        receiver.stop()
        sink.shutdown()
    assert (4, 0) == (sink.stats()["replayed_spans"], sink.stats()["spool_files"])
    rows = sql_rows(store, "select count(*) as n from spans where app is not null")
    assert [{"n": 4}] == rows


def test_full_spool_drops_are_counted_not_raised(tmp_path: Path) -> None:
    """Backend down and the spool full: the batch is dropped and counted, export never raises."""
    sink = OtlpSink(
        f"http://127.0.0.1:{port_in_range()}",
        spool_dir=str(tmp_path / "spool"),
        max_retries=0,
        max_spool_bytes=10,
    )
    with capture_spans() as spans:
        workload()
    sink.export(list(spans))
    sink.shutdown()
    assert (4, 4) == (sink.stats()["dropped_spans"], sink.lost_spans())


def test_partial_success_rejections_are_counted(tmp_path: Path) -> None:
    """A span the backend refuses (start before 1970) is counted as rejected; the rest land."""
    with OtlpReceiver(str(tmp_path / "store")) as receiver:
        sink = OtlpSink(receiver.url, api_key=receiver.key, spool_dir=str(tmp_path / "spool"))
        with capture_spans() as spans:
            workload()
        batch: list[Any] = list(spans)
        batch[0] = batch[0]._replace(start_time=0, end_time=5)
        sink.export(batch)
        sink.shutdown()
    assert (1, 4) == (sink.stats()["rejected_spans"], sink.stats()["sent_spans"])
    assert [{"n": 3}] == sql_rows(receiver.store, "select count(*) as n from spans")


SCRIPT = """
import logging, span_tree
log = logging.getLogger("job")
with span_tree.span("nightly job", run=7):
    log.info("starting")
    with span_tree.span("step one"):
        pass
"""


def test_a_user_script_exports_with_the_otel_variables_alone(tmp_path: Path) -> None:
    """OTEL_EXPORTER_OTLP_ENDPOINT/HEADERS alone make a plain script export; exit flushes it."""
    with OtlpReceiver(str(tmp_path / "store")) as receiver:
        script = tmp_path / "job.py"
        script.write_text(textwrap.dedent(SCRIPT))
        env = {
            **os.environ,
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
            "OTEL_EXPORTER_OTLP_HEADERS": f"x-api-key={receiver.key}",
            "SPANTREE_STORE": "none",
            "SPANTREE_SPOOL_DIR": str(tmp_path / "spool"),
        }
        env.pop("PYTEST_CURRENT_TEST", None)
        result = subprocess.run(
            [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60
        )
        assert 0 == result.returncode, result.stderr
        assert "" == result.stdout  # no jsonl lines: OTLP is where spans go
        rows = sql_rows(
            receiver.store, "select name, app, events[1].message as m from spans order by name"
        )
    assert [["nightly job", "job", "starting"], ["step one", "job", None]] == [
        list(row.values()) for row in rows
    ]
