"""The processor/sink boundary: user sinks, failing and hanging sinks, drops, no self-tracing."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

import span_tree
from span_tree import FinishedSpan
from span_tree.typing import Sink


class RecordingSink:
    """A user sink that keeps its batches and the calls it received."""

    def __init__(self) -> None:
        self.batches: list[list[FinishedSpan]] = []
        self.flushes = 0
        self.shut_down = False
        self.threads: set[str] = set()

    def export(self, batch: Sequence[FinishedSpan]) -> None:
        self.threads.add(threading.current_thread().name)
        self.batches.append(list(batch))

    def force_flush(self, timeout: float) -> bool:
        self.flushes += 1
        return True

    def shutdown(self) -> None:
        self.shut_down = True


class RaisingSink:
    """A sink whose every call raises."""

    def export(self, batch: Sequence[FinishedSpan]) -> None:
        raise RuntimeError("disk full")

    def force_flush(self, timeout: float) -> bool:
        raise RuntimeError("still full")

    def shutdown(self) -> None:
        raise RuntimeError("cannot close")


class BlockingSink:
    """A sink whose `export` blocks until released (a hung network call)."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.spans: list[FinishedSpan] = []

    def export(self, batch: Sequence[FinishedSpan]) -> None:
        self.entered.set()
        self.release.wait(10.0)
        self.spans.extend(batch)

    def force_flush(self, timeout: float) -> bool:
        return True

    def shutdown(self) -> None:
        self.release.set()


def configure(*sinks: Sink, **options: Any) -> None:
    """Configure with only the given sinks."""
    span_tree.configure(
        sinks=list(sinks), console=False, jsonl=False, store=None, schedule_delay=0.05, **options
    )


@pytest.fixture
def blocking_sink() -> Iterator[BlockingSink]:
    """A blocking sink that is always released at the end of the test."""
    sink = BlockingSink()
    yield sink
    sink.release.set()


def test_user_sink_receives_batches_on_the_worker_thread() -> None:
    """A user sink gets `FinishedSpan` batches, flushes and a shutdown from the worker."""
    sink = RecordingSink()
    assert isinstance(sink, Sink)
    configure(sink, batch_size=4)
    for index in range(10):
        with span_tree.span(f"s{index}"):
            pass
    assert span_tree.flush(5.0)
    spans = [span for batch in sink.batches for span in batch]
    assert [f"s{i}" for i in range(10)] == [span.name for span in spans]
    assert all(isinstance(span, FinishedSpan) for span in spans)
    assert all(len(batch) <= 4 for batch in sink.batches)
    assert sink.flushes >= 1
    assert {"span_tree-processor"} == sink.threads
    span_tree.shutdown(5.0)
    assert sink.shut_down


def test_raising_sink_never_reaches_the_caller(capsys: pytest.CaptureFixture[str]) -> None:
    """A sink that raises is counted in `stats()`; other sinks still get every span."""
    good = RecordingSink()
    configure(RaisingSink(), good)
    for index in range(3):
        with span_tree.span(f"ok{index}"):
            pass
        assert span_tree.flush(5.0)
    stats = span_tree.stats()
    bad_stats, good_stats = stats["sinks"]
    assert "RaisingSink" == bad_stats["name"]
    assert bad_stats["errors"] >= 3
    assert "RuntimeError" in bad_stats["last_error"]
    assert 0 == bad_stats["exported_spans"]
    assert (3, 0) == (good_stats["exported_spans"], good_stats["errors"])
    assert 3 == sum(len(batch) for batch in good.batches)
    assert "span_tree: sink RaisingSink failed" in capsys.readouterr().err


def test_hanging_sink_does_not_block_span_creation(blocking_sink: BlockingSink) -> None:
    """While a sink hangs, spans still open and close; `flush` gives up at its timeout."""
    configure(blocking_sink)
    with span_tree.span("first"):
        pass
    assert blocking_sink.entered.wait(5.0)
    for index in range(1_000):
        with span_tree.span(f"while-hung-{index}"):
            pass
    assert not span_tree.flush(timeout=0.1)
    assert 1_000 == span_tree.stats()["queued"]
    blocking_sink.release.set()
    assert span_tree.flush(timeout=5.0)
    assert 1_001 == len(blocking_sink.spans)


def test_queue_bound_drops_and_counts(blocking_sink: BlockingSink) -> None:
    """Beyond `max_queue_size` new spans are dropped and counted in `stats()`."""
    configure(blocking_sink, max_queue_size=5)
    with span_tree.span("first"):
        pass
    assert blocking_sink.entered.wait(5.0)
    for index in range(20):
        with span_tree.span(f"extra-{index}"):
            pass
    stats = span_tree.stats()
    assert (5, 15) == (stats["queued"], stats["dropped"])
    blocking_sink.release.set()
    assert span_tree.flush(5.0)
    assert ["first"] + [f"extra-{i}" for i in range(5)] == [s.name for s in blocking_sink.spans]


def test_sink_own_stats_are_merged() -> None:
    """A sink's own `stats()` dict is merged into its entry of `span_tree.stats()`."""

    class CountingSink(RecordingSink):
        def stats(self) -> dict[str, int]:
            return {"retries": 2}

    configure(CountingSink())
    with span_tree.span("x"):
        pass
    span_tree.flush(5.0)
    entry = span_tree.stats()["sinks"][0]
    assert (2, 1) == (entry["retries"], entry["exported_spans"])


def test_sink_factory_failure_is_reported_not_raised(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A sink that cannot be built is reported on stderr; tracing goes on."""
    from span_tree._processor import BatchProcessor

    def broken() -> Sink:
        raise OSError("no such bucket")

    good = RecordingSink()
    processor = BatchProcessor([broken, lambda: good], schedule_delay=0.05)
    with span_tree.span("kept") as kept:
        pass
    processor.on_end(kept)
    assert processor.flush(5.0)
    assert ["kept"] == [span.name for batch in good.batches for span in batch]
    assert processor.shutdown(5.0)
    assert "could not start a sink" in capsys.readouterr().err


def test_processor_work_is_not_traced(caplog: pytest.LogCaptureFixture) -> None:
    """Spans opened and records logged by a sink create no spans of their own."""
    caplog.set_level(logging.DEBUG)
    seen_current: list[object] = []

    class TracingSink(RecordingSink):
        def export(self, batch: Sequence[FinishedSpan]) -> None:
            seen_current.append(span_tree.current_span())
            with span_tree.span("inside-sink"):
                logging.getLogger("sink").warning("exported %d", len(batch))
            super().export(batch)

    sink = TracingSink()
    configure(sink)
    with span_tree.span("user-work"):
        pass
    assert span_tree.flush(5.0)
    with span_tree.span("more-work"):
        pass
    assert span_tree.flush(5.0)
    names = [span.name for batch in sink.batches for span in batch]
    assert ["user-work", "more-work"] == names
    assert [None, None] == seen_current
    assert 0 == span_tree.stats()["sinks"][0]["errors"]


def test_flush_calls_force_flush_of_every_sink() -> None:
    """`span_tree.flush()` asks every sink to flush."""
    first, second = RecordingSink(), RecordingSink()
    configure(first, second)
    with span_tree.span("x"):
        pass
    assert span_tree.flush(5.0)
    assert (1, 1) == (first.flushes, second.flushes)


def test_spans_after_shutdown_are_dropped_not_raised() -> None:
    """Spans ending after `shutdown()` are counted as dropped, never raise."""
    sink = RecordingSink()
    configure(sink)
    assert span_tree.shutdown(5.0)
    with span_tree.span("late"):
        pass
    assert 1 == span_tree.stats()["dropped"]
    assert [] == sink.batches


def test_shutdown_twice_and_flush_after_shutdown_succeed() -> None:
    """A second `shutdown()` (say, yours and then the exit hook's) and `flush()` return True."""
    sink = RecordingSink()
    configure(sink)
    with span_tree.span("only"):
        pass
    assert span_tree.shutdown(5.0)
    assert span_tree.shutdown(5.0)
    assert span_tree.flush(5.0)
    assert ["only"] == [span.name for batch in sink.batches for span in batch]


def test_replaced_processor_is_freed() -> None:
    """A processor replaced by `configure()` (and its sinks) is not kept alive by fork hooks."""
    import gc
    import weakref

    from span_tree import _runtime

    configure(RecordingSink())
    with span_tree.span("x"):
        pass
    assert span_tree.flush(5.0)
    processor = _runtime.state.processor
    assert processor is not None
    old, worker = weakref.ref(processor), processor._worker
    del processor
    configure(RecordingSink())
    assert worker is not None
    worker.join(5.0)
    gc.collect()
    assert old() is None


def test_a_queue_past_the_batch_size_wakes_the_worker() -> None:
    """A span arriving when the queue already holds more than a batch wakes the worker."""
    from span_tree._processor import BatchProcessor
    from span_tree.testing import capture_spans

    with capture_spans() as records:
        for index in range(6):
            with span_tree.span("burst", index=index):
                pass
    exported = threading.Event()

    class SignallingSink(RecordingSink):
        def export(self, batch: Sequence[FinishedSpan]) -> None:
            super().export(batch)
            exported.set()

    sink = SignallingSink()
    processor = BatchProcessor([lambda: sink], batch_size=4, schedule_delay=600.0)
    processor.queue.extend(records[:5])  # other threads stepped over exactly 4
    processor.on_end(records[5])
    woke = exported.wait(10.0)
    processor.shutdown(5.0)
    assert (True, 6) == (woke, sum(len(batch) for batch in sink.batches))


class ColumnRecordingSink(RecordingSink):
    """A sink that takes batches as columns (``export_columns``) and keeps them."""

    def __init__(self) -> None:
        super().__init__()
        self.column_batches: list[list[list[Any]]] = []

    def export_columns(self, columns: Sequence[Sequence[Any]]) -> None:
        self.column_batches.append([list(column) for column in columns])


def _spans_of_every_shape() -> None:
    """Spans with attributes, an event, an error, a remote parent, and a started version."""
    with span_tree.span("plain", user=7, token="secret-value"):
        logging.getLogger("shapes").warning("inside %s", "plain")
    with pytest.raises(ValueError), span_tree.span("failing"):
        raise ValueError("broken")
    from span_tree._span import Span

    with Span("remote", remote_parent=("2" * 27, "ab" * 8)):
        pass
    root = span_tree.span("root")
    root.__enter__()
    child = span_tree.span("child")
    child.__enter__()
    root.end()  # the child is still running: its `started` version is queued first
    child.__exit__(None, None, None)
    root.__exit__(None, None, None)


def test_column_sinks_get_columns_and_the_others_the_same_spans_as_records() -> None:
    """A sink with export_columns gets batches as columns; the others, records of the same spans."""
    from span_tree._record import SPAN_COLUMNS, records_from_columns
    from span_tree.typing import ColumnSink

    columns_sink, records_sink = ColumnRecordingSink(), RecordingSink()
    assert (True, False) == (
        isinstance(columns_sink, ColumnSink),
        isinstance(records_sink, ColumnSink),
    )
    configure(columns_sink, records_sink, capture_logging=True)
    _spans_of_every_shape()
    assert span_tree.flush(5.0)
    from_columns = [
        record for batch in columns_sink.column_batches for record in records_from_columns(batch)
    ]
    records = [span for batch in records_sink.batches for span in batch]
    assert [] == columns_sink.batches  # export() was not called as well
    assert all(len(SPAN_COLUMNS) == len(batch) for batch in columns_sink.column_batches)
    assert records == from_columns
    assert ["plain", "failing", "remote", "child", "root", "child"] == [r.name for r in records]
    assert ["started", "succeeded"] == [r.status for r in records if r.name == "child"]
    plain, failing, remote = records[:3]
    assert ({"user": 7, "token": "[scrubbed]"}, ["inside plain"], None) == (
        dict(plain.attributes),
        [event.message for event in plain.events],
        plain.parent_id,
    )
    assert ("failed", "ValueError", "broken", "ERROR") == (
        failing.status,
        failing.error_type,
        failing.error_message,
        failing.level,
    )
    assert ("2" * 27, "ab" * 8) == (remote.trace_id, remote.parent_id)


def test_a_batch_that_fails_to_convert_keeps_every_other_span(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """One span whose conversion raises is reported; the column sink still gets the rest."""
    from span_tree._record import SPAN_COLUMNS, records_from_columns

    class Unprintable:
        def __str__(self) -> str:
            raise RuntimeError("no text")

    sink = ColumnRecordingSink()
    configure(sink)
    with span_tree.span("before"):
        pass
    with span_tree.span("odd") as odd:
        pass
    with span_tree.span("after"):
        pass
    odd.thread_ref = Unprintable()  # type: ignore[assignment]  # its name cannot be read
    assert span_tree.flush(5.0)
    names = [r.name for batch in sink.column_batches for r in records_from_columns(batch)]
    assert len(SPAN_COLUMNS) == len(sink.column_batches[0])
    assert ["before", "after"] == names
    assert "could not record span 'odd'" in capsys.readouterr().err


def test_columns_of_a_batch_across_midnight_and_of_odd_names() -> None:
    """A batch's columns keep each span's own date, and names of any object become text."""
    from span_tree._record import SPAN_COLUMNS, records_from_columns, utc_day

    class Unhashable:
        __hash__ = None  # type: ignore[assignment]

        def __str__(self) -> str:
            return "unhashable name"

    sink = ColumnRecordingSink()
    configure(sink)
    day_us = 86_400_000_000
    opened = []
    for name in ("late", Unhashable(), "", 42, "late"):
        with span_tree.span(name) as opened_span:
            pass
        opened.append(opened_span)
    assert span_tree.flush(5.0)
    from span_tree._span import to_columns

    opened[0].start_ns -= day_us * 1000  # a span begun the day before
    columns = to_columns(opened)
    assert len(SPAN_COLUMNS) == len(columns)
    records = records_from_columns(columns)
    assert ["late", "unhashable name", "<unnamed>", "42", "late"] == [r.name for r in records]
    assert [utc_day(r.start_time) for r in records] == [r.date for r in records]
    assert 2 == len({r.date for r in records})


def test_a_name_whose_hash_fails_is_recorded_as_its_text() -> None:
    """A span named by an object whose __hash__ or __eq__ raises keeps its text name and
    does not cost its batch's other spans (names were only ever converted with str())."""
    from span_tree._span import to_records

    class BadHash:
        def __hash__(self) -> int:
            raise RuntimeError("no hash")

        def __str__(self) -> str:
            return "bad hash"

    class BadEq:
        def __hash__(self) -> int:
            return 1

        def __eq__(self, other: object) -> bool:
            raise RuntimeError("no eq")

        def __str__(self) -> str:
            return "bad eq"

    sink = ColumnRecordingSink()
    configure(sink)
    opened = []
    for name in ("a", BadHash(), BadEq(), BadEq(), "b"):
        with span_tree.span(name) as opened_span:
            pass
        opened.append(opened_span)
    assert span_tree.flush(5.0)
    assert ["a", "bad hash", "bad eq", "bad eq", "b"] == [r.name for r in to_records(opened)]


def test_a_mock_sink_gets_records_through_export() -> None:
    """A unittest.mock sink (it answers every attribute, export_columns too) gets export()."""
    from unittest import mock

    sink = mock.Mock()
    configure(sink)
    with span_tree.span("mocked"):
        pass
    assert span_tree.flush(5.0)
    exported = [span.name for call in sink.export.call_args_list for span in call.args[0]]
    assert (["mocked"], []) == (exported, sink.export_columns.call_args_list)
