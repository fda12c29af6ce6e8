"""The core in real processes: exit and SIGTERM flush, hanging sinks, fork, defaults, CLI."""

from __future__ import annotations

import json
import os
import pty
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from support.processes import TIMEOUT, clean_env, read_pty, run_python, terminate_when_ready

import span_tree

SCRIPT = Path(__file__).parents[1] / "data" / "scripts" / "core_workload.py"
# Generous bounds: a process that needs them is hung, not slow.


def run_workload(mode: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run the workload script to completion."""
    return subprocess.run(
        [sys.executable, str(SCRIPT), mode, *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=clean_env(**env),
    )


def span_lines(stdout: str) -> list[dict[str, Any]]:
    """The span records among stdout's lines (those with the `spantree` marker)."""
    records = []
    for line in stdout.splitlines():
        if line.startswith("{"):
            data = json.loads(line)
            if data.get("spantree") == 1:
                records.append(data)
    return records


def start_and_terminate(mode: str, *args: str) -> tuple[int, str, str]:
    """Start the workload, wait for its "ready", send SIGTERM, collect the outcome."""
    return terminate_when_ready([sys.executable, str(SCRIPT), mode, *args], clean_env())


@pytest.mark.slow
def test_normal_exit_flushes_every_span() -> None:
    """Spans still queued at a normal exit are written by the atexit hook."""
    result = run_workload("exit", "50")
    assert 0 == result.returncode, result.stderr
    records = span_lines(result.stdout)
    assert 100 == len(records)
    roots = [r for r in records if r["parent_id"] is None]
    assert [f"work-{i}" for i in range(50)] == [r["name"] for r in roots]
    assert all(["step"] == [e["message"][:4] for e in r["events"]] for r in roots)


@pytest.mark.slow
def test_sigterm_flushes_then_dies_by_sigterm() -> None:
    """On SIGTERM the queued spans are flushed and the process still ends by SIGTERM."""
    returncode, stdout, stderr = start_and_terminate("sigterm", "20")
    assert -signal.SIGTERM == returncode, stderr
    assert 40 == len(span_lines(stdout))
    assert "not killed" not in stderr


@pytest.mark.slow
def test_sigterm_chains_to_the_application_handler() -> None:
    """The app's own SIGTERM handler still runs after the flush; no span is written twice."""
    returncode, stdout, stderr = start_and_terminate("sigterm-app", "5")
    assert 0 == returncode, stderr
    assert "app handler" in stderr
    records = span_lines(stdout)
    assert 10 == len(records)
    assert 10 == len({r["span_id"] for r in records})


@pytest.mark.slow
def test_hanging_sink_cannot_hang_normal_exit() -> None:
    """A sink that never returns delays exit by at most `exit_timeout`, not forever."""
    result = run_workload("hang-exit", "5")
    assert 0 == result.returncode, result.stderr
    assert 10 == len(span_lines(result.stdout))


@pytest.mark.slow
def test_hanging_sink_cannot_hang_sigterm() -> None:
    """With a hanging sink, SIGTERM still ends the process (after `exit_timeout`)."""
    returncode, stdout, _ = start_and_terminate("hang-sigterm", "5")
    assert -signal.SIGTERM == returncode
    assert 10 == len(span_lines(stdout))


@pytest.mark.slow
def test_explicit_shutdown_then_exit() -> None:
    """`span_tree.shutdown()` by hand, then exit: every span once, no error."""
    result = run_workload("shutdown", "4")
    assert 0 == result.returncode, result.stderr
    assert 8 == len(span_lines(result.stdout))
    assert "" == result.stderr


@pytest.mark.slow
def test_forked_child_records_its_own_spans() -> None:
    """After `os.fork()` the child's spans are exported by the child, with its pid."""
    result = run_workload("fork")
    assert 0 == result.returncode, result.stderr
    records = span_lines(result.stdout)
    names = sorted(r["name"] for r in records)
    expected = sorted(
        [
            "parent-before-0",
            "parent-before-0-child",
            "parent-forking",
            "child-0",
            "child-0-child",
            "child-1",
            "child-1-child",
            "parent-after-0",
            "parent-after-0-child",
        ]
    )
    assert expected == names
    by_name = {r["name"]: r for r in records}
    parent_pid = by_name["parent-forking"]["pid"]
    child_pid = by_name["child-0"]["pid"]
    assert parent_pid != child_pid
    assert {child_pid} == {by_name[n]["pid"] for n in names if n.startswith("child")}
    assert {parent_pid} == {by_name[n]["pid"] for n in names if n.startswith("parent")}
    # The child forked inside "parent-forking": its spans continue that trace.
    assert by_name["parent-forking"]["span_id"] == by_name["child-0"]["parent_id"]
    # No span was exported twice (the parent's queue is not re-exported by the child).
    assert len(records) == len({r["span_id"] for r in records})


@pytest.mark.slow
def test_no_terminal_defaults_to_jsonl_on_stdout() -> None:
    """Without configure() and without a terminal, spans are JSON lines on stdout."""
    result = run_workload("defaults", "2")
    assert 0 == result.returncode, result.stderr
    records = span_lines(result.stdout)
    assert 4 == len(records)
    assert {"core_workload"} == {r["app"] for r in records}
    assert "" == result.stderr


@pytest.mark.slow
def test_terminal_defaults_to_console_tree_and_local_store(tmp_path: Path) -> None:
    """On a terminal, traces are drawn as trees on stderr and kept in `~/.spantree`."""
    controller, terminal = pty.openpty()
    try:
        process = subprocess.Popen(
            [sys.executable, str(SCRIPT), "defaults", "2"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=terminal,
            env=clean_env(HOME=str(tmp_path), COLUMNS="120"),
        )
        os.close(terminal)
        terminal = -1
        screen = read_pty(controller, process)
        assert process.stdout is not None
        stdout = process.stdout.read().decode()
        process.stdout.close()
    finally:
        os.close(controller)
        if terminal != -1:
            os.close(terminal)
    assert 0 == process.returncode, screen
    assert "" == stdout
    assert "work-0" in screen and "work-1-child" in screen
    assert "step 1" in screen
    assert "✓" in screen
    assert list((tmp_path / ".spantree").rglob("*.parquet")), "no Parquet in the local store"


@pytest.mark.slow
def test_warning_outside_spans_reaches_stderr_via_last_resort() -> None:
    """With no logging configured, a WARNING outside spans still prints; INFO does not."""
    result = run_workload("logging")
    assert 0 == result.returncode, result.stderr
    assert "warning outside spans" in result.stderr
    assert "info outside spans" not in result.stderr
    # Inside a span the record became an event instead.
    records = span_lines(result.stdout)
    root = next(r for r in records if r["name"] == "work-0")
    assert ["step 0"] == [e["message"] for e in root["events"]]
    assert "step 0" not in result.stderr
    # A record whose message cannot be formatted is reported as stdlib does; no crash.
    assert "--- Logging error ---" in result.stderr
    bad_format = next(r for r in records if r["name"] == "bad-format")
    assert "succeeded" == bad_format["status"]
    # configure(log_level=INFO) lowered the unconfigured root: INFO inside spans is kept.
    assert ["info inside a span"] == [e["message"] for e in bad_format["events"]]
    assert "info inside a span" not in result.stderr


@pytest.mark.slow
def test_basic_config_after_configure_still_configures_logging() -> None:
    """`logging.basicConfig()` after `configure()` installs the app's handler as usual."""
    result = run_workload("basicconfig")
    assert 0 == result.returncode, result.stderr
    assert ["APP INFO info outside spans", "APP WARNING step 0"] == result.stderr.splitlines()
    root = next(r for r in span_lines(result.stdout) if r["name"] == "work-0")
    assert ["step 0"] == [e["message"] for e in root["events"]]


@pytest.mark.slow
def test_cli_version() -> None:
    """`spantree --version` prints the version and exits 0."""
    spantree = Path(sys.executable).parent / "spantree"
    result = subprocess.run(
        [str(spantree), "--version"], capture_output=True, text=True, timeout=TIMEOUT
    )
    assert 0 == result.returncode, result.stderr
    assert f"spantree {span_tree.__version__}" == result.stdout.strip()


PLUGIN_TEST = textwrap.dedent(
    '''
    import span_tree
    from span_tree.testing import CapturedSpans


    def test_fixture(capture_spans: CapturedSpans) -> None:
        """The plugin fixture captures spans without any conftest."""
        with span_tree.span("in-user-test", k=1):
            span_tree.get_logger("user").info("info event")
        assert ["in-user-test"] == capture_spans.names()
        record = capture_spans.by_name("in-user-test")
        assert {"k": 1} == dict(record.attributes)
        assert ["info event"] == [event.message for event in record.events]


    def test_no_default_sink_prints() -> None:
        """Spans in a test without configure() print nothing."""
        for index in range(3):
            with span_tree.span(f"quiet-{index}"):
                pass
        assert span_tree.flush(5)
        assert [] == span_tree.stats()["sinks"]
    '''
)


@pytest.mark.slow
def test_pytest_plugin_fixture_and_silence(tmp_path: Path) -> None:
    """A user's pytest run gets the `capture_spans` fixture; default sinks print nothing."""
    (tmp_path / "test_user.py").write_text(PLUGIN_TEST)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-s", "-q", "-p", "no:cacheprovider", "test_user.py"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        cwd=tmp_path,
        env=clean_env(),
    )
    assert 0 == result.returncode, result.stdout + result.stderr
    assert "2 passed" in result.stdout
    assert '"spantree"' not in result.stdout + result.stderr
    assert "quiet-0" not in result.stdout + result.stderr


@pytest.mark.slow
def test_the_application_s_gc_disable_survives_the_worker() -> None:
    """gc.disable() called while the worker converts a batch stays in force: the worker
    never turns the process-wide cyclic GC off or on (a span name's __str__, run by the
    worker, stands in for an application thread disabling it at that moment)."""
    script = textwrap.dedent(
        """
        import gc
        import span_tree
        from span_tree.sinks.memory import MemorySink

        class Name:
            def __str__(self):
                gc.disable()
                return "named"

        sink = MemorySink()
        span_tree.configure(sinks=[sink], console=False, jsonl=False, store=None)
        with span_tree.span(Name()):
            pass
        assert span_tree.flush(10)
        print([record.name for record in sink.spans], gc.isenabled())
        """
    )
    result = run_python(script)
    assert "" == result.stderr
    assert "['named'] False\n" == result.stdout
