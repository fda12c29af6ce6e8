"""Tracing never raises into the traced application: real processes and the guard itself."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import pytest
from support.processes import TIMEOUT, clean_env, read_pty

import span_tree
from span_tree import _runtime
from span_tree.sinks.memory import MemorySink

README = Path(__file__).parents[2] / "README.md"

# The script from the reliability report: configure a store, then spans in a tight loop.
# The worker thread imports the Parquet sink's libraries (which import asyncio) while the
# loop runs, so the caller used to meet a half-imported asyncio.
TIGHT_LOOP = """
import tempfile, span_tree
span_tree.configure(store=tempfile.mkdtemp())
for i in range(30_000):
    with span_tree.span("root"):
        pass
print("done")
"""


def run_tight_loop(script: str, cwd: Path, **env: str) -> None:
    """Run a user script in a fresh interpreter; it must finish and print "done"."""
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=TIMEOUT * 2,
        cwd=cwd,
        env=clean_env(**env),
    )
    assert (0, "done") == (result.returncode, result.stdout.strip()), result.stderr[-2000:]
    assert "Traceback" not in result.stderr


@pytest.mark.slow
@pytest.mark.parametrize("attempt", range(3))
def test_tight_loop_while_the_worker_imports_its_sinks(tmp_path: Path, attempt: int) -> None:
    """A five-line script never crashes while the worker imports pyarrow/fsspec."""
    run_tight_loop(TIGHT_LOOP, tmp_path)


@pytest.mark.slow
def test_tight_loop_configured_from_the_environment(tmp_path: Path) -> None:
    """The same loop configured by SPANTREE_STORE alone (no configure call) survives."""
    script = TIGHT_LOOP.replace("span_tree.configure(store=tempfile.mkdtemp())", "")
    run_tight_loop(script, tmp_path, SPANTREE_STORE=str(tmp_path / "store"))


def readme_record_example() -> str:
    """The first Python block of the README's "Record" section, as a user copies it."""
    section = README.read_text().split("## Record", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match is not None
    return match.group(1)


@pytest.mark.slow
def test_readme_example_on_a_terminal(tmp_path: Path) -> None:
    """The README's first example runs on a terminal: the tree is drawn, nothing raises."""
    script = tmp_path / "example.py"
    script.write_text(readme_record_example())
    controller, terminal = pty.openpty()
    try:
        process = subprocess.Popen(
            [sys.executable, str(script)],
            stdin=subprocess.DEVNULL,
            stdout=terminal,
            stderr=terminal,
            cwd=tmp_path,
            env=clean_env(HOME=str(tmp_path), COLUMNS="120"),
        )
        os.close(terminal)
        terminal = -1
        screen = read_pty(controller, process)
    finally:
        os.close(controller)
        if terminal != -1:
            os.close(terminal)
    assert 0 == process.returncode, screen
    assert "Traceback" not in screen
    assert "import" in screen and "load" in screen and "reading orders.csv" in screen
    assert list((tmp_path / ".spantree").rglob("*.parquet")), "no Parquet in the local store"


# -- the guard, in process -------------------------------------------------------------


class BadStr:
    """An object whose ``__str__`` raises, as user objects sometimes do."""

    def __str__(self) -> str:
        raise RuntimeError("no str for you")


@pytest.fixture
def production_guard(monkeypatch: pytest.MonkeyPatch) -> None:
    """Behave as in production: absorb internal errors instead of raising them."""
    monkeypatch.delenv("SPANTREE_RAISE_INTERNAL_ERRORS", raising=False)
    monkeypatch.setattr(_runtime.stats, "internal_errors", 0)


def test_unprintable_name_of_a_running_child_when_the_root_ends(memory_sink: MemorySink) -> None:
    """A child named by a bad object, open when its root ends: root stored, context reset."""
    child_started, root_ended = threading.Event(), threading.Event()

    def child_work() -> None:
        with span_tree.span(BadStr()):  # type: ignore[call-overload]
            child_started.set()
            root_ended.wait(TIMEOUT)

    with span_tree.span("root"):
        worker = threading.Thread(target=child_work)  # patched: the span is root's child
        worker.start()
        child_started.wait(TIMEOUT)
    # The root ended while the child was still running (published as `started`).
    assert None is span_tree.current_span()
    root_ended.set()
    worker.join(TIMEOUT)
    span_tree.flush()
    names = sorted((s.name, s.status) for s in memory_sink.spans)
    assert [
        ("<BadStr: str() failed>", "started"),
        ("<BadStr: str() failed>", "succeeded"),
        ("root", "succeeded"),
    ] == names


def test_tags_whose_str_raises_are_kept_as_a_placeholder(memory_sink: MemorySink) -> None:
    """set_tags with an unprintable value records a placeholder instead of raising."""
    with span_tree.span("root"):
        span_tree.set_tags(owner=BadStr())
    span_tree.flush()
    assert {"owner": "<BadStr: str() failed>"} == memory_sink.spans[0].tags


def test_second_exit_warns_instead_of_raising(memory_sink: MemorySink) -> None:
    """Leaving a span twice is a SpanTreeWarning, not `Token has already been used`."""
    with span_tree.span("outer"):
        inner = span_tree.span("inner")
        inner.__enter__()
        inner.__exit__(None, None, None)
        with pytest.warns(span_tree.SpanTreeWarning, match="exited twice"):
            inner.__exit__(None, None, None)
        assert "outer" == span_tree.current_span().name  # type: ignore[union-attr]
    span_tree.flush()
    assert ["inner", "outer"] == sorted(s.name for s in memory_sink.spans)


def test_internal_failure_is_counted_and_warned_once(
    production_guard: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug of ours at span end never reaches the caller: counted, one warning."""
    processor = _runtime.state.processor
    assert processor is not None

    def broken_on_end(span: object) -> None:
        raise KeyError("bug in span_tree")

    monkeypatch.setattr(processor, "on_end", broken_on_end)
    with pytest.warns(span_tree.SpanTreeWarning, match="internal error") as caught:
        for _ in range(3):
            with span_tree.span("work"):
                pass
    assert 1 == len(caught)
    assert 3 == span_tree.stats()["internal_errors"]
    assert None is span_tree.current_span()


def test_internal_failure_keeps_the_application_exception(
    production_guard: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When span end fails while the user's exception escapes, the user's exception wins."""
    processor = _runtime.state.processor
    assert processor is not None
    monkeypatch.setattr(processor, "on_end", lambda span: 1 / 0)

    @span_tree.span
    def failing() -> None:
        raise ValueError("the application's own error")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", span_tree.SpanTreeWarning)
        with pytest.raises(ValueError, match="the application's own error"):
            failing()
        with (
            pytest.raises(ValueError, match="the application's own error"),
            span_tree.span("block"),
        ):
            raise ValueError("the application's own error")
    assert 2 == span_tree.stats()["internal_errors"]


def test_internal_failure_raises_under_the_test_suite(monkeypatch: pytest.MonkeyPatch) -> None:
    """SPANTREE_RAISE_INTERNAL_ERRORS=1 (set for this suite) makes such bugs visible."""
    processor = _runtime.state.processor
    assert processor is not None
    monkeypatch.setenv("SPANTREE_RAISE_INTERNAL_ERRORS", "1")
    monkeypatch.setattr(processor, "on_end", lambda span: 1 / 0)
    with pytest.raises(ZeroDivisionError), span_tree.span("work"):
        pass


def test_failure_at_start_runs_the_decorated_function_untraced(
    production_guard: None, monkeypatch: pytest.MonkeyPatch, memory_sink: MemorySink
) -> None:
    """A bug of ours when a span starts: the function still runs and returns its value."""
    from span_tree import _span

    def broken_start(span: object) -> bool:
        raise AttributeError("bug in span_tree")

    monkeypatch.setattr(_span, "_start", broken_start)

    @span_tree.span
    def compute() -> int:
        return 42

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", span_tree.SpanTreeWarning)
        assert 42 == compute()
        with span_tree.span("block") as block:
            assert block is not None
    span_tree.flush()
    assert [] == memory_sink.spans
    assert None is span_tree.current_span()


def test_task_name_ignores_a_half_imported_asyncio(monkeypatch: pytest.MonkeyPatch) -> None:
    """While another thread imports asyncio, a span outside any loop has no task name."""
    from span_tree import _span

    half = type(sys)("asyncio")
    half.__spec__ = type("Spec", (), {"_initializing": True})()  # type: ignore[assignment]
    monkeypatch.setitem(sys.modules, "asyncio", half)
    monkeypatch.setattr(_span, "_running_loop", _span._no_loop_yet)
    assert None is _span._task_name()
    assert _span._no_loop_yet is _span._running_loop  # not cached: looked up again later
