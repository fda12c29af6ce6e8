"""`configure()` options, `SPANTREE_*` environment variables and the default sinks."""

from __future__ import annotations

import inspect
import io
import logging
import sys
from typing import Any

import pytest

import span_tree
from span_tree import _config, _runtime, _threads
from span_tree._processor import SinkFactory
from span_tree._span import SpanTreeWarning
from span_tree.sinks.memory import MemorySink


class FakeTerminal(io.StringIO):
    """A stderr that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def sink_names(factories: list[SinkFactory]) -> list[str]:
    """Name the sink class each factory would build, without building it."""
    names = []
    for factory in factories:
        bound = inspect.getclosurevars(factory).nonlocals
        names.append(bound["name"] if "name" in bound else type(bound["sink"]).__name__)
    return names


def factory_args(factory: SinkFactory) -> tuple[Any, ...]:
    """The positional and keyword arguments a lazy factory passes to its sink class."""
    bound = inspect.getclosurevars(factory).nonlocals
    return (bound["args"], bound["kwargs"])


def defaults(*, under_pytest: bool = False, **overrides: Any) -> list[SinkFactory]:
    """Call `_sink_factories` the way `configure()` does when told nothing.

    Being under pytest is what this very test run is, so the detection is replaced
    around the call, unless `under_pytest`.
    """
    options: dict[str, Any] = {
        "console": None,
        "jsonl": None,
        "store": _config._UNSET,
        "storage_options": None,
        "endpoint": None,
        "api_key": None,
        "sinks": None,
        "namespace": "default",
    }
    options.update(overrides)
    detect = _config._under_pytest
    _config._under_pytest = lambda: under_pytest  # type: ignore[assignment]
    try:
        return _config._sink_factories(**options)
    finally:
        _config._under_pytest = detect  # type: ignore[assignment]


@pytest.fixture
def outside_pytest(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """Look like a normal process: no SPANTREE_* variables, a temporary HOME."""
    for name in (
        "SPANTREE_STORE",
        "SPANTREE_CONSOLE",
        "SPANTREE_JSONL",
        "SPANTREE_ENDPOINT",
        "SPANTREE_API_KEY",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))


@pytest.mark.usefixtures("outside_pytest")
def test_terminal_defaults_to_console_and_local_store(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """On a terminal: the rich console sink plus Parquet in `~/.spantree`."""
    monkeypatch.setattr(sys, "stderr", FakeTerminal())
    factories = defaults()
    assert ["ConsoleSink", "ParquetSink"] == sink_names(factories)
    args, kwargs = factory_args(factories[1])
    assert (str(tmp_path / ".spantree"),) == args
    assert {"storage_options": {}} == kwargs


@pytest.mark.usefixtures("outside_pytest")
def test_no_terminal_defaults_to_jsonl(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a terminal (container, CI): one JSON line per span on stdout only."""
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert ["JsonlSink"] == sink_names(defaults())


@pytest.mark.usefixtures("outside_pytest")
def test_no_stderr_at_all_defaults_to_jsonl(monkeypatch: pytest.MonkeyPatch) -> None:
    """`sys.stderr is None` (pythonw, some daemons) counts as not a terminal."""
    monkeypatch.setattr(sys, "stderr", None)
    assert ["JsonlSink"] == sink_names(defaults())


@pytest.mark.usefixtures("outside_pytest")
def test_store_env_replaces_jsonl(monkeypatch: pytest.MonkeyPatch) -> None:
    """`SPANTREE_STORE` without a terminal writes Parquet there instead of jsonl."""
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    monkeypatch.setenv("SPANTREE_STORE", "s3://bucket/spans")
    factories = defaults()
    assert ["ParquetSink"] == sink_names(factories)
    assert (("s3://bucket/spans",), {"storage_options": {}}) == factory_args(factories[0])


@pytest.mark.usefixtures("outside_pytest")
def test_store_env_off_disables_parquet_on_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """`SPANTREE_STORE=none` on a terminal keeps only the console."""
    monkeypatch.setattr(sys, "stderr", FakeTerminal())
    monkeypatch.setenv("SPANTREE_STORE", "none")
    assert ["ConsoleSink"] == sink_names(defaults())


@pytest.mark.usefixtures("outside_pytest")
def test_endpoint_env_sends_to_receiver_with_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """`SPANTREE_ENDPOINT` + `SPANTREE_API_KEY` add the HTTP sink and replace jsonl."""
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    monkeypatch.setenv("SPANTREE_ENDPOINT", "http://127.0.0.1:9/v1/spans")
    monkeypatch.setenv("SPANTREE_API_KEY", "k-123")
    factories = defaults()
    assert ["HttpSink"] == sink_names(factories)
    assert (("http://127.0.0.1:9/v1/spans",), {"api_key": "k-123"}) == factory_args(factories[0])


@pytest.mark.usefixtures("outside_pytest")
def test_console_and_jsonl_env_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    """`SPANTREE_CONSOLE=1` / `SPANTREE_JSONL=0` override the terminal-based choice."""
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    monkeypatch.setenv("SPANTREE_CONSOLE", "1")
    monkeypatch.setenv("SPANTREE_JSONL", "off")
    assert ["ConsoleSink"] == sink_names(defaults())


@pytest.mark.usefixtures("outside_pytest")
def test_explicit_arguments_beat_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Arguments to `configure` win over `SPANTREE_*` variables."""
    monkeypatch.setattr(sys, "stderr", FakeTerminal())
    monkeypatch.setenv("SPANTREE_CONSOLE", "1")
    monkeypatch.setenv("SPANTREE_STORE", "/tmp/elsewhere")
    user_sink = MemorySink()
    factories = defaults(console=False, jsonl=True, store=None, sinks=[user_sink])
    assert ["JsonlSink", "MemorySink"] == sink_names(factories)
    assert user_sink is factories[1]()


def test_under_pytest_no_default_sink(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inside a pytest test, the defaults print nothing and write no store."""
    for name in ("SPANTREE_STORE", "SPANTREE_CONSOLE", "SPANTREE_JSONL", "SPANTREE_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(sys, "stderr", FakeTerminal())
    assert [] == sink_names(defaults(under_pytest=True))
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert [] == sink_names(defaults(under_pytest=True))


def test_built_in_factories_build_their_sinks() -> None:
    """The lazy console and jsonl factories import and build the real sink classes."""
    from span_tree.sinks.console import ConsoleSink
    from span_tree.sinks.jsonl import JsonlSink

    console, jsonl = defaults(console=True, jsonl=True, store=None)
    assert isinstance(console(), ConsoleSink)
    assert isinstance(jsonl(), JsonlSink)


def test_environment_fills_resource_fields_and_tags(
    monkeypatch: pytest.MonkeyPatch, memory_sink: MemorySink
) -> None:
    """`SPANTREE_NAMESPACE/APP/APP_VERSION/TAGS/ENV` fill the span fields and tags."""
    monkeypatch.setenv("SPANTREE_NAMESPACE", "ns1")
    monkeypatch.setenv("SPANTREE_APP", "env-app")
    monkeypatch.setenv("SPANTREE_APP_VERSION", "9.9")
    monkeypatch.setenv("SPANTREE_TAGS", "team=core, tier = gold,broken")
    monkeypatch.setenv("SPANTREE_ENV", "staging")
    sink = MemorySink()
    with pytest.warns(SpanTreeWarning, match="'broken' is not KEY=VALUE"):
        span_tree.configure(sinks=[sink], console=False, jsonl=False, store=None)
    with span_tree.span("env"):
        pass
    span_tree.flush(5.0)
    record = sink.spans[0]
    assert ("ns1", "env-app", "9.9") == (record.namespace, record.app, record.app_version)
    assert {"team": "core", "tier": "gold", "env": "staging"} == dict(record.tags)


def test_app_defaults_to_script_name(memory_sink: MemorySink) -> None:
    """Without `app`, the application name is the running script's name."""
    assert _config._script_name() == _runtime.state.settings.app
    assert "" != _runtime.state.settings.app


def test_configure_again_replaces_and_flushes_previous_sinks() -> None:
    """A second `configure()` flushes and shuts down the previous sinks."""
    first, second = MemorySink(), MemorySink()
    span_tree.configure(sinks=[first], console=False, jsonl=False, store=None)
    with span_tree.span("to-first"):
        pass
    span_tree.configure(sinks=[second], console=False, jsonl=False, store=None)
    with span_tree.span("to-second"):
        pass
    span_tree.flush(5.0)
    assert ["to-first"] == [r.name for r in first.spans]
    assert first.shut_down
    assert ["to-second"] == [r.name for r in second.spans]


def test_configure_patch_threads_switch() -> None:
    """`patch_threads` installs and removes the thread patches."""
    span_tree.configure(sinks=[], console=False, jsonl=False, store=None, patch_threads=False)
    assert not _threads.threads_patched()
    span_tree.configure(sinks=[], console=False, jsonl=False, store=None, patch_threads=True)
    assert _threads.threads_patched()


def test_configure_installs_one_logging_handler() -> None:
    """Configuring twice leaves exactly one span handler on the root logger."""
    span_tree.configure(sinks=[], console=False, jsonl=False, store=None)
    span_tree.configure(sinks=[], console=False, jsonl=False, store=None)
    from span_tree._logging import SpanEventHandler

    handlers = [h for h in logging.getLogger().handlers if isinstance(h, SpanEventHandler)]
    assert 1 == len(handlers)


def test_first_span_without_configure_auto_configures(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A span before any `configure()` configures from the environment (silent in tests)."""
    span_tree.shutdown(timeout=5)
    _runtime.state.processor = None
    with span_tree.span("auto"):
        pass
    assert _runtime.state.processor is not None
    assert span_tree.flush(5.0)
    assert ("", "") == tuple(capsys.readouterr())


def test_flush_and_stats_without_processor() -> None:
    """`flush`, `shutdown` and `stats` work before anything was configured."""
    span_tree.shutdown(timeout=5)
    _runtime.state.processor = None
    assert span_tree.flush(0.1)
    assert span_tree.shutdown(0.1)
    assert 0 == span_tree.stats()["dropped"]


def test_flush_returns_true_when_done(memory_sink: MemorySink) -> None:
    """`flush(timeout)` returns True once everything reached the sinks."""
    for index in range(100):
        with span_tree.span(f"s{index}"):
            pass
    assert span_tree.flush(timeout=5.0)
    assert 100 == len(memory_sink.spans)


def test_shutdown_stops_recording(memory_sink: MemorySink) -> None:
    """After `shutdown()`, new spans are dropped (counted) until `configure()`."""
    with span_tree.span("before"):
        pass
    assert span_tree.shutdown(timeout=5.0)
    with span_tree.span("after"):
        pass
    assert ["before"] == [r.name for r in memory_sink.spans]
    assert memory_sink.shut_down
    assert 1 == span_tree.stats()["dropped"]


def test_first_spans_of_several_threads_configure_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Threads starting their first spans at once configure tracing once, not once each."""
    import threading
    import time

    calls = []
    real = _config.configure

    def slow_configure(**options: Any) -> None:
        calls.append(threading.current_thread().name)
        time.sleep(0.2)  # widen the window in which other threads would see no processor
        real(**options)

    monkeypatch.setattr(_runtime.state, "configure", slow_configure)
    span_tree.shutdown(timeout=5)
    _runtime.state.processor = None
    start = threading.Barrier(4)

    def first_span() -> None:
        start.wait()
        with span_tree.span("first"):
            pass

    threads = [threading.Thread(target=first_span) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert 1 == len(calls)
