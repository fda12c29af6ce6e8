"""The dashboard finds each run's root among the root candidates only, and still agrees
with the ``traces`` view (its definition before: one group over every span)."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.analytics_store import make_span

from span_tree._ids import trace_id_from_w3c
from span_tree._record import FinishedSpan
from span_tree.analytics import Store
from span_tree.storage import open_store, write_spans

T0 = 1_767_261_600_000_000  # 2026-01-01 10:00 UTC, in µs

# The dashboard as it was defined over `traces` (a group over every span of each trace).
OVER_TRACES = """
SELECT namespace, app, root_name AS name, arg_max(status, start_time) AS status,
    count(*) AS runs, count(*) FILTER (status = 'succeeded') AS succeeded,
    count(*) FILTER (status = 'failed') AS failed,
    count(*) FILTER (status = 'started') AS running,
    count(*) FILTER (status = 'failed') / count(*) AS error_rate,
    max(start_time) AS last_time, arg_max(trace_id, start_time) AS last_trace_id,
    quantile_cont(duration_us, 0.5) AS p50_us, quantile_cont(duration_us, 0.99) AS p99_us
FROM traces GROUP BY ALL ORDER BY ALL
"""


def trace_id(number: int) -> str:
    """A trace id of day T0."""
    return trace_id_from_w3c(f"{number:032x}", T0 // 1_000_000)


def runs() -> list[FinishedSpan]:
    """Runs of every shape a root can take."""
    spans = []
    for number in range(1, 4):  # plain runs: a parentless root (seq 1) and two children
        trace, start = trace_id(number), T0 + number * 1_000_000
        root = make_span(trace, "job", start_us=start, duration_us=900, seq=1)
        spans.append(root)
        for child in (2, 3):
            spans.append(
                make_span(
                    trace,
                    "step",
                    start_us=start + child * 10,
                    duration_us=100,
                    parent=root.span_id,
                    seq=child,
                    status="failed" if number == 3 else "succeeded",
                )
            )
    # A run still going: its root has no duration yet; its children ended.
    trace, start = trace_id(10), T0 + 10_000_000
    root = make_span(trace, "stuck", start_us=start, duration_us=None, status="started", seq=1)
    spans += [
        root,
        make_span(trace, "step", start_us=start + 5, duration_us=40, parent=root.span_id, seq=2),
        make_span(trace, "step", start_us=start + 50, duration_us=70, parent=root.span_id, seq=3),
    ]
    # Continued from another service: the local root (seq 1) has a parent not in the store.
    trace, start = trace_id(11), T0 + 11_000_000
    local = make_span(trace, "handler", start_us=start, duration_us=300, parent="f" * 16, seq=1)
    spans += [
        local,
        make_span(trace, "step", start_us=start + 1, duration_us=20, parent=local.span_id, seq=2),
    ]
    # Another tracer's spans (seq 0): parentless root, and a trace with no parentless span.
    trace, start = trace_id(12), T0 + 12_000_000
    root = make_span(trace, "otel", start_us=start, duration_us=500, seq=0, app="other")
    spans += [
        root,
        make_span(trace, "x", start_us=start + 2, duration_us=5, parent=root.span_id, seq=0),
    ]
    trace, start = trace_id(13), T0 + 13_000_000
    spans += [
        make_span(trace, "late", start_us=start + 9, duration_us=5, parent="e" * 16, seq=0),
        make_span(trace, "early", start_us=start, duration_us=50, parent="d" * 16, seq=0),
    ]
    # Two parentless spans in one trace: the earlier is the root.
    trace, start = trace_id(14), T0 + 14_000_000
    spans += [
        make_span(trace, "second", start_us=start + 7, duration_us=1, seq=1, seed="s"),
        make_span(trace, "first", start_us=start, duration_us=2, seq=1, seed="f"),
    ]
    return spans


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """A store of the runs above."""
    root: Path = tmp_path_factory.mktemp("dashboard")
    write_spans(open_store(str(root)), runs())
    return Store(str(root))


def test_dashboard_agrees_with_traces(store: Store) -> None:
    """Every column of every row equals the aggregation over the traces view."""
    expected = store.sql(OVER_TRACES).fetchall()
    actual = store.sql("SELECT * FROM dashboard ORDER BY ALL").fetchall()
    assert expected == actual


def test_each_shape_of_root(store: Store) -> None:
    """A running root's duration runs to its last span's end; a local root with a remote
    parent, the earliest span of a foreign trace and the earlier of two parentless spans
    are the roots."""
    rows = store.sql(
        "SELECT name, runs, succeeded, failed, running, p50_us FROM dashboard ORDER BY name"
    ).fetchall()
    assert [
        ("early", 1, 1, 0, 0, 50.0),
        ("first", 1, 1, 0, 0, 2.0),
        ("handler", 1, 1, 0, 0, 300.0),
        ("job", 3, 3, 0, 0, 900.0),
        ("otel", 1, 1, 0, 0, 500.0),
        ("stuck", 1, 0, 0, 1, 120.0),
    ] == rows
