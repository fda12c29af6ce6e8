"""The public surface of `span_tree`: a sorted `__all__` whose names all import."""

from __future__ import annotations

import importlib

import span_tree

EXPECTED_PUBLIC = {
    "Event",
    "FinishedSpan",
    "HandledError",
    "Span",
    "SpanLogger",
    "SpanTreeWarning",
    "__version__",
    "configure",
    "current_span",
    "flush",
    "getLogger",
    "get_logger",
    "logger_log_extra",
    "new_span",
    "new_span_id",
    "new_trace_id",
    "set_tags",
    "shutdown",
    "span",
    "stats",
    "trace_id_from_w3c",
    "w3c_trace_id",
    "wrap",
}


def test_all_is_sorted_and_unique() -> None:
    """`span_tree.__all__` is sorted and has no duplicates."""
    assert sorted(set(span_tree.__all__)) == list(span_tree.__all__)


def test_every_public_name_is_importable() -> None:
    """Each name in `__all__` is an attribute of the package."""
    module = importlib.import_module("span_tree")
    missing = [name for name in span_tree.__all__ if not hasattr(module, name)]
    assert [] == missing


def test_issue_api_is_public() -> None:
    """The names the issue promises are all public."""
    assert set() == EXPECTED_PUBLIC - set(span_tree.__all__)


def test_public_callables_have_docstrings() -> None:
    """Every public function and class has a docstring."""
    undocumented = [
        name
        for name in span_tree.__all__
        if callable(getattr(span_tree, name)) and not getattr(span_tree, name).__doc__
    ]
    assert [] == undocumented


def test_version_matches_package_metadata() -> None:
    """`span_tree.__version__` is the installed distribution's version."""
    from importlib.metadata import version

    assert version("span-tree") == span_tree.__version__


def test_sink_protocol_and_typing_module() -> None:
    """`span_tree.typing.Sink` is a runtime-checkable Protocol the built-in sinks satisfy."""
    from span_tree.sinks.console import ConsoleSink
    from span_tree.sinks.jsonl import JsonlSink
    from span_tree.sinks.memory import MemorySink
    from span_tree.typing import Sink

    for sink in (ConsoleSink(), JsonlSink(), MemorySink()):
        assert isinstance(sink, Sink)
    assert not isinstance(object(), Sink)


def test_pytest_plugin_entry_point_is_declared() -> None:
    """The `pytest11` entry point `span_tree` names `span_tree.pytest_plugin`."""
    from importlib.metadata import entry_points

    points = {point.name: point.value for point in entry_points(group="pytest11")}
    assert "span_tree.pytest_plugin" == points.get("span_tree")


def test_console_script_entry_point_is_declared() -> None:
    """The `spantree` console script runs `span_tree.cli:main`."""
    from importlib.metadata import entry_points

    points = {point.name: point.value for point in entry_points(group="console_scripts")}
    assert "span_tree.cli:main" == points.get("spantree")
