"""Property: arbitrary span trees -> ParquetSink -> files -> read back -> identical records."""

from __future__ import annotations

import logging
import tempfile
from typing import Any

import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import span_tree
from span_tree._record import SCHEMA_VERSION, Event, FinishedSpan, HandledError, iso_from_us
from span_tree.sinks.parquet import ParquetSink
from span_tree.storage import open_store, span_files
from span_tree.storage.schema import table_to_records
from span_tree.testing import capture_spans

# Text pyarrow can store: no lone surrogates (not encodable as UTF-8).
text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
ids = st.text("0123456789abcdef", min_size=16, max_size=16)
json_leaf = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | text
    | st.floats(allow_nan=False, allow_infinity=False)
)
json_value = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=6,
)
attributes = st.dictionaries(text, json_value, max_size=4)
# 1970 .. 2100, in microseconds
times = st.integers(0, 4_102_444_800_000_000)
int32 = st.integers(0, 2**31 - 1)
maybe_text = st.none() | text

events = st.builds(
    Event,
    time=times,
    seq=st.integers(0, 2**40),
    level=st.sampled_from(["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]),
    logger=text,
    message=text,
    file=maybe_text,
    line=st.none() | int32,
    attributes=attributes,
)
handled = st.builds(HandledError, time=times, type=text, message=text, traceback=text)


@st.composite
def span_trees(draw: st.DrawFn) -> list[FinishedSpan]:
    """A trace: spans whose parents are earlier spans of the same trace (any shape)."""
    count = draw(st.integers(1, 8))
    trace_id = draw(st.text("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
                            min_size=27, max_size=27))  # fmt: skip
    span_ids = draw(st.lists(ids, min_size=count, max_size=count, unique=True))
    namespace = draw(st.sampled_from(["default", "shop", "a.b-c_d"]))
    tags = draw(st.dictionaries(text, text, max_size=3))
    spans = []
    for index, span_id in enumerate(span_ids):
        parent = None if index == 0 else span_ids[draw(st.integers(0, index - 1))]
        start = draw(times)
        finished = draw(st.booleans())
        end = start + draw(st.integers(0, 10**9)) if finished else None
        spans.append(
            FinishedSpan(
                namespace=namespace,
                date=iso_from_us(start)[:10],
                trace_id=trace_id,
                span_id=span_id,
                parent_id=parent,
                seq=index,
                name=draw(text),
                kind=draw(st.sampled_from(["internal", "server", "client"])),
                status=draw(st.sampled_from(["succeeded", "failed"])) if finished else "started",
                level=draw(st.sampled_from(["INFO", "ERROR"])),
                start_time=start,
                end_time=end,
                duration_us=None if end is None else end - start,
                file=draw(maybe_text),
                line=draw(st.none() | int32),
                function=draw(maybe_text),
                app=draw(text),
                app_version=draw(text),
                host=draw(text),
                pid=draw(st.integers(0, 2**40)),
                thread=draw(text),
                task=draw(maybe_text),
                tags=tags,
                attributes=draw(attributes),
                error_type=draw(maybe_text),
                error_message=draw(maybe_text),
                error_traceback=draw(maybe_text),
                handled_errors=tuple(draw(st.lists(handled, max_size=2))),
                events=tuple(draw(st.lists(events, max_size=3))),
                links=tuple(draw(st.lists(text, max_size=2))),
                ref_src=tuple(draw(st.lists(text, max_size=2))),
                ref_dest=tuple(draw(st.lists(text, max_size=2))),
                written_at=None,
                schema_version=SCHEMA_VERSION,
            )
        )
    return spans


def through_sink(records: list[FinishedSpan]) -> list[FinishedSpan]:
    """Export records through a ParquetSink into a fresh store and read every file back."""
    with tempfile.TemporaryDirectory() as directory:
        sink = ParquetSink(directory, spool_dir=f"{directory}/spool", max_age=60)
        sink.export(records)
        assert sink.force_flush(10)
        sink.shutdown()
        found = span_files(open_store(directory))
        assert [] == found.problems
        back = [r for path in found.files for r in table_to_records(pq.read_table(path))]
    assert all(record.written_at is not None for record in back)
    return back


def unstamped(records: list[FinishedSpan]) -> list[FinishedSpan]:
    """Records without written_at (the sink stamps it), in a canonical order."""
    # repr breaks ties: generated traces may reuse a span id.
    return sorted((r._replace(written_at=None) for r in records), key=repr)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(span_trees(), min_size=1, max_size=3))
def test_arbitrary_span_records_round_trip(traces: list[list[FinishedSpan]]) -> None:
    """Any span records (every field, odd text, nested JSON) read back identical."""
    records = [span for trace in traces for span in trace]
    assert unstamped(records) == unstamped(through_sink(records))


Tree = tuple[str, dict[str, Any], list[str], list[Any]]
trees: st.SearchStrategy[Tree] = st.recursive(
    st.tuples(text, attributes, st.lists(text, max_size=2), st.just([])),
    lambda children: st.tuples(text, attributes, st.lists(text, max_size=2),
                               st.lists(children, max_size=3)),
    max_leaves=10,
)  # fmt: skip


def run_tree(tree: Tree) -> None:
    """Open the tree's spans for real, logging its messages inside each."""
    name, attrs, messages, children = tree
    with span_tree.span(name or "unnamed", **{f"a_{k}": v for k, v in attrs.items()}):
        for message in messages:
            logging.getLogger("prop").warning("%s", message)
        for child in children:
            run_tree(child)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trees)
def test_recorded_span_trees_round_trip(tree: Tree) -> None:
    """Spans recorded by the library itself (any tree shape) read back identical."""
    with capture_spans() as spans:
        run_tree(tree)
    assert unstamped(list(spans)) == unstamped(through_sink(list(spans)))
