"""No span lost silently at exit: real processes, the real S3 endpoint (moto server)."""

from __future__ import annotations

import glob
import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from support.processes import clean_env, closed_port_url, hanging_endpoint, terminate_when_ready
from support.spans import stored_rows

from span_tree.storage.schema import table_to_records

pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).parents[1] / "data" / "scripts" / "exit_workload.py"
UVICORN_APP = SCRIPT.with_name("uvicorn_app.py")
TIMEOUT = 60  # a process that needs this long is hung, not slow


def user_env(spool: Path, options: dict[str, Any] | None = None) -> dict[str, str]:
    """A user's environment, with the spool directory and the test S3 options if given."""
    env = clean_env(SPANTREE_SPOOL_DIR=str(spool))
    if options is not None:
        env["SPANTREE_TEST_S3"] = json.dumps(options)
    return env


def run(mode: str, count: int, store: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run the workload to its end."""
    return subprocess.run(
        [sys.executable, str(SCRIPT), mode, str(count), store],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=env,
    )


def s3_rows(endpoint: Any, bucket: str) -> list[Any]:
    """Every span row under the bucket."""
    fs = endpoint.filesystem()
    rows = []
    for path in fs.find(bucket):
        if path.endswith(".parquet"):
            with fs.open(path, "rb") as handle:
                rows.extend(table_to_records(pq.read_table(handle)))
    return rows


def spool_rows(spool: Path) -> int:
    """Span rows waiting in every spool directory under ``spool``."""
    files = glob.glob(f"{spool}/**/*.parquet", recursive=True)
    return sum(pq.read_metadata(path).num_rows for path in files)


def test_plain_exit_writes_every_span_to_s3(
    s3_endpoint: Any, s3_bucket: str, tmp_path: Path
) -> None:
    """1,000 spans and a plain exit (no flush()): all 1,000 are in S3, none in the spool."""
    env = user_env(tmp_path / "spool", s3_endpoint.storage_options)
    # Room for importing s3fs/pyarrow on a loaded machine; the exit itself must work.
    env["SPANTREE_TEST_EXIT_TIMEOUT"] = "30"
    result = run("exit", 1000, f"s3://{s3_bucket}/store", env)
    assert 0 == result.returncode, result.stderr
    rows = s3_rows(s3_endpoint, s3_bucket)
    assert (1000, 0) == (len({row.span_id for row in rows}), spool_rows(tmp_path / "spool"))
    assert "" == result.stderr


def test_store_down_at_exit_spools_every_span(tmp_path: Path) -> None:
    """S3 on a closed port: 3,000 spans are all in the spool after exit, or counted on stderr."""
    options = {"key": "k", "secret": "s", "client_kwargs": {"endpoint_url": closed_port_url()}}
    result = run("exit", 3000, "s3://down/store", user_env(tmp_path / "spool", options))
    assert 0 == result.returncode, result.stderr
    spooled = spool_rows(tmp_path / "spool")
    # Under heavy load the spool may not be reached in time either: then the line counts.
    assert 3000 == spooled + _counted_as_lost(result.stderr), result.stderr


def test_hanging_store_at_exit_spools_within_the_exit_timeout(tmp_path: Path) -> None:
    """S3 that accepts connections and never answers: exit still spools all 3,000 spans."""
    with hanging_endpoint() as url:
        options = {"key": "k", "secret": "s", "client_kwargs": {"endpoint_url": url}}
        result = run("exit", 3000, "s3://hangs/store", user_env(tmp_path / "spool", options))
    assert 0 == result.returncode, result.stderr
    assert 3000 == spool_rows(tmp_path / "spool") + _counted_as_lost(result.stderr), result.stderr


def _counted_as_lost(stderr: str) -> int:
    """The count of the 'spans could not be written or spooled' line, 0 without one."""
    for line in stderr.splitlines():
        if "could not be written or spooled" in line:
            return int(line.split("span_tree: ")[1].split()[0])
    return 0


def test_dropped_spans_are_reported_at_exit(tmp_path: Path) -> None:
    """Spans dropped by a full queue are counted in one stderr line at exit."""
    result = run("losses", 5000, str(tmp_path / "store"), user_env(tmp_path / "spool"))
    assert 0 == result.returncode, result.stderr
    lines = [line for line in result.stderr.splitlines() if "spans not stored" in line]
    assert 1 == len(lines), result.stderr
    assert "dropped (queue full or after shutdown)" in lines[0]


def test_sigterm_records_the_open_spans_as_failed(tmp_path: Path) -> None:
    """SIGTERM inside an open span: it and its open parent are stored failed by the signal."""
    store = tmp_path / "store"
    code, _, stderr = terminate_when_ready(
        [sys.executable, str(SCRIPT), "sigterm", "3", str(store)],
        user_env(tmp_path / "spool"),
        timeout=TIMEOUT,
    )
    assert -signal.SIGTERM == code, stderr
    rows = stored_rows(store)
    by_name = {row.name: row for row in rows}
    assert ["job", "step", "step", "step", "waiting"] == sorted(row.name for row in rows)
    for name in ("job", "waiting"):
        row = by_name[name]
        assert ("failed", "signal.SIGTERM") == (row.status, row.error_type)
        assert "received SIGTERM" in (row.error_message or "")
        assert row.end_time is not None
    assert "exit_workload.py" in (by_name["waiting"].error_traceback or "")  # the stack
    assert {"succeeded"} == {row.status for row in rows if row.name == "step"}
    parents = {row.span_id: row.parent_id for row in rows}
    assert parents[by_name["waiting"].span_id] == by_name["job"].span_id


def test_hanging_receiver_at_exit_spools_every_span(tmp_path: Path) -> None:
    """A receiver that accepts connections and never answers: exit spools all 3,000 spans."""
    with hanging_endpoint() as url:
        result = run("http", 3000, url, user_env(tmp_path / "spool"))
    assert 0 == result.returncode, result.stderr
    names = glob.glob(f"{tmp_path / 'spool'}/**/*.json.gz", recursive=True)
    spooled = sum(int(Path(name).name.split(".")[0].rsplit("-", 1)[1]) for name in names)
    assert 3000 == spooled + _counted_as_lost(result.stderr), result.stderr
    assert 3000 == spooled, result.stderr


def test_store_down_at_sigterm_spools_the_spans(tmp_path: Path) -> None:
    """SIGTERM with S3 on a closed port: every span (the open ones failed) is in the spool."""
    options = {"key": "k", "secret": "s", "client_kwargs": {"endpoint_url": closed_port_url()}}
    code, _, stderr = terminate_when_ready(
        [sys.executable, str(SCRIPT), "sigterm", "300", "s3://down/store"],
        user_env(tmp_path / "spool", options),
        timeout=TIMEOUT,
    )
    assert -signal.SIGTERM == code, stderr
    assert 302 == spool_rows(tmp_path / "spool") + _counted_as_lost(stderr), stderr


def test_sigterm_under_uvicorn_stores_the_served_requests(tmp_path: Path) -> None:
    """A traced app under uvicorn, SIGTERM after a request (no flush call): its spans stored."""
    import httpx

    from span_tree.receiver._subprocess import free_port

    store = tmp_path / "store"
    port = free_port()
    answers: list[str] = []
    code, _, stderr = terminate_when_ready(
        [sys.executable, str(UVICORN_APP), str(port), str(store)],
        user_env(tmp_path / "spool"),
        when_ready=lambda: answers.append(
            httpx.get(f"http://127.0.0.1:{port}/work", timeout=30).text
        ),
        timeout=TIMEOUT,
    )
    assert ["ok"] == answers
    # uvicorn shuts down gracefully, then raises the captured SIGTERM again: the usual code.
    assert -signal.SIGTERM == code, stderr
    rows = stored_rows(store)
    assert [("GET /work", "succeeded"), ("inner-work", "succeeded")] == sorted(
        (row.name, row.status) for row in rows
    )


def test_spans_of_threads_ending_after_main_are_written_not_spooled(tmp_path: Path) -> None:
    """A non-daemon thread recording after the first exit flush: its spans reach the store."""
    store = tmp_path / "store"
    result = run("late", 50, str(store), user_env(tmp_path / "spool"))
    assert 0 == result.returncode, result.stderr
    names = sorted(row.name for row in stored_rows(store))
    assert (["late"] * 50 + ["main"], 0) == (names, spool_rows(tmp_path / "spool"))
