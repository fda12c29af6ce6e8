"""Built-in sinks: the console tree, jsonl lines (and reading them back), the memory sink."""

from __future__ import annotations

import io
import json
import logging

import pytest

import span_tree
from span_tree import FinishedSpan
from span_tree._display import format_duration
from span_tree._record import newest_versions, span_from_json_dict, span_to_json, span_to_json_dict
from span_tree.sinks._render import render_trace
from span_tree.sinks.console import ConsoleSink
from span_tree.sinks.jsonl import JsonlSink
from span_tree.sinks.memory import MemorySink
from span_tree.testing import capture_spans


@pytest.fixture(autouse=True)
def info_level(caplog: pytest.LogCaptureFixture) -> None:
    """Let INFO records through the root logger (pytest's handlers keep it WARNING)."""
    caplog.set_level(logging.DEBUG)


def sample_trace() -> list[FinishedSpan]:
    """Record a small trace: events, a child, a handled error and a failed child."""
    logger = logging.getLogger("shop")
    with capture_spans() as spans, span_tree.span("checkout", cart=3):
        logger.info("cart loaded")
        with span_tree.span("charge", amount=12.5):
            logger.debug("calling bank")
        logger.warning("slow bank")
        try:
            with span_tree.span("ship"):
                raise TimeoutError("carrier down")
        except TimeoutError:
            logger.exception("shipping failed, will retry")
    return list(spans)


def plain(renderable: object, width: int = 120) -> str:
    """Render a rich object to plain text."""
    from rich.console import Console

    buffer = io.StringIO()
    Console(file=buffer, width=width, color_system=None, highlight=False).print(renderable)
    return buffer.getvalue()


def test_render_trace_draws_spans_and_events_in_causal_order() -> None:
    """The tree shows names, status marks, errors and log lines in the order they happened."""
    text = plain(render_trace(sample_trace()))
    lines = [line.strip("│├└─ ") for line in text.splitlines()]
    order = [
        next(i for i, line in enumerate(lines) if marker in line)
        for marker in (
            "checkout",
            "charge",
            "calling bank",
            "slow bank",
            "ship",
            "shipping failed",
        )
    ]
    assert sorted(order) == order
    assert "✓ checkout" in text
    assert "✗ ship" in text
    assert "TimeoutError: carrier down" in text
    assert "WARNING  slow bank" in text
    assert "[shop]" in text
    assert "cart=3" in text


def test_render_trace_min_level_hides_debug() -> None:
    """`min_level="INFO"` hides DEBUG events."""
    text = plain(render_trace(sample_trace(), min_level="INFO"))
    assert "calling bank" not in text
    assert "cart loaded" in text


def test_console_sink_prints_one_tree_when_the_root_arrives() -> None:
    """The console sink waits for the root, then prints the whole trace as one tree."""
    records = sample_trace()
    buffer = io.StringIO()
    sink = ConsoleSink(buffer)
    children = [r for r in records if r.parent_id is not None]
    root = next(r for r in records if r.parent_id is None)
    sink.export(children)
    assert "" == buffer.getvalue()
    sink.export([root])
    text = buffer.getvalue()
    assert "checkout" in text and "charge" in text and "ship" in text
    assert 1 == text.count("checkout")
    assert sink.force_flush(1.0)


def test_console_sink_prints_late_children_and_orphans() -> None:
    """A child arriving after its root is printed on its own; rootless spans at shutdown."""
    buffer = io.StringIO()
    sink = ConsoleSink(buffer)
    with capture_spans() as spans:
        root = span_tree.span("root-early")
        root.__enter__()
        child = span_tree.span("late-child")
        child.__enter__()
        root.end()
        child.__exit__(None, None, None)
        root.__exit__(None, None, None)
    started, root_record, finished = spans
    assert "started" == started.status
    sink.export([started, root_record])
    first = buffer.getvalue()
    assert "… late-child" in first
    assert "running" in first
    sink.export([finished])
    assert "✓ late-child" in buffer.getvalue()[len(first) :]
    with capture_spans() as orphans:
        span_tree.span("orphan-root")(lambda: None)()
    orphan = orphans[0]._replace(parent_id="0" * 16, seq=2)
    sink.export([orphan])
    before_shutdown = buffer.getvalue()
    sink.shutdown()
    assert "orphan-root" in buffer.getvalue()[len(before_shutdown) :]


def test_console_sink_as_configured_sink_writes_stderr(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`configure(console=True)` draws each finished trace on stderr."""
    span_tree.configure(console=True, jsonl=False, store=None, schedule_delay=0.05)
    with span_tree.span("visible"):
        logging.getLogger("c").info("shown in tree")
    assert span_tree.flush(5.0)
    captured = capsys.readouterr()
    assert "visible" in captured.err
    assert "shown in tree" in captured.err
    assert "" == captured.out


def test_jsonl_sink_writes_one_marked_line_per_span() -> None:
    """Each span is one JSON line carrying `"spantree": 1`."""
    records = sample_trace()
    buffer = io.StringIO()
    sink = JsonlSink(buffer)
    sink.export(records)
    sink.shutdown()
    lines = buffer.getvalue().splitlines()
    assert len(records) == len(lines)
    for line, record in zip(lines, records, strict=True):
        data = json.loads(line)
        assert 1 == data["spantree"]
        assert (record.name, record.span_id) == (data["name"], data["span_id"])


def test_jsonl_line_reads_back_to_an_equal_record() -> None:
    """`span_from_json_dict(json.loads(line))` gives back the very same record."""
    for record in sample_trace():
        line = span_to_json(record)
        assert "\n" not in line
        assert record == span_from_json_dict(json.loads(line))


def test_json_dict_round_trip_keeps_odd_attribute_values() -> None:
    """Records with repr'd, nested and unicode attributes round-trip through JSON."""
    with capture_spans() as spans, span_tree.span("odd", obj=object(), nested={"ä": [1, None]}):
        pass
    record = spans[0]
    assert record == span_from_json_dict(json.loads(json.dumps(span_to_json_dict(record))))


def test_jsonl_sink_as_configured_sink_writes_stdout(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`configure(jsonl=True)` prints the span lines on stdout."""
    span_tree.configure(console=False, jsonl=True, store=None, schedule_delay=0.05)
    with span_tree.span("printed"):
        pass
    assert span_tree.flush(5.0)
    out = capsys.readouterr().out
    assert ["printed"] == [json.loads(line)["name"] for line in out.splitlines()]


def test_memory_sink_keeps_and_clears() -> None:
    """The memory sink keeps exported spans until cleared."""
    sink = MemorySink()
    records = sample_trace()
    sink.export(records)
    assert records == sink.spans
    sink.clear()
    assert [] == sink.spans
    sink.shutdown()
    assert sink.shut_down


def test_newest_versions_prefers_the_finished_version() -> None:
    """`newest_versions` keeps one record per span id: the finished one."""
    with capture_spans() as spans:
        root = span_tree.span("r")
        root.__enter__()
        child = span_tree.span("c")
        child.__enter__()
        root.end()
        child.__exit__(None, None, None)
        root.__exit__(None, None, None)
    kept = {span.name: span.status for span in newest_versions(spans)}
    assert {"r": "succeeded", "c": "succeeded"} == kept
    kept_reversed = {span.name: span.status for span in newest_versions(reversed(spans))}
    assert kept == kept_reversed


@pytest.mark.parametrize(
    ("micros", "text"),
    [
        (None, "running"),
        (850, "850µs"),
        (12_300, "12.3ms"),
        (4_560_000, "4.56s"),
        (185_000_000, "3m 05s"),
    ],
)
def test_format_duration(micros: int | None, text: str) -> None:
    """Durations print in the most readable unit."""
    assert text == format_duration(micros)


def test_console_sink_prints_a_continued_trace_when_its_local_root_ends() -> None:
    """A trace continued from a remote parent prints when its local root (seq 1) arrives."""
    buffer = io.StringIO()
    sink = ConsoleSink(buffer)
    remote = (span_tree.new_trace_id(), "fedcba9876543210")
    with (
        capture_spans() as spans,
        span_tree.Span("handle-request", kind="server", remote_parent=remote),
        span_tree.span("query-db"),
    ):
        pass
    sink.export(list(spans))
    text = buffer.getvalue()
    assert "handle-request" in text
    assert "query-db" in text
