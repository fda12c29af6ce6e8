"""Error occurrences: one per exception per trace, fatal only when it escaped the local root.

Hand-built span chains (the facts a traced service stores) against the
``error_occurrences``, ``error_groups`` and ``health`` views.
"""

from __future__ import annotations

from pathlib import Path

from support.analytics_store import BASE_US, make_span, span_id, trace_id, traceback_text

from span_tree._record import FinishedSpan, HandledError
from span_tree.analytics import Store
from span_tree.storage import open_store, write_spans

KEY_ERROR = ("KeyError", "'order 42'", traceback_text("/app/db.py", "load_order", "KeyError"))


def _chain(
    label: str,
    statuses: list[str],
    *,
    errors: list[tuple[str, str, str] | None] | None = None,
    first_seq: int = 1,
    root_parent: str | None = None,
) -> list[FinishedSpan]:
    """Nested spans root -> ... -> leaf of one trace; ``statuses[0]`` is the root's."""
    start = BASE_US + sum(map(ord, label)) * 1_000_000
    trace = trace_id(label, start)
    spans: list[FinishedSpan] = []
    parent = root_parent
    for depth, status in enumerate(statuses):
        error = None
        if status == "failed":
            error = errors[depth] if errors and errors[depth] else KEY_ERROR
        record = make_span(
            trace,
            f"level{depth}",
            start_us=start + depth,
            duration_us=100 - depth,
            parent=parent,
            status=status,
            error=error,
            seq=first_seq + depth if first_seq else 0,
            seed=f"{label}:{depth}",
        )
        spans.append(record)
        parent = record.span_id
    return spans


def _occurrences(tmp_path: Path, records: list[FinishedSpan]) -> list[tuple[object, ...]]:
    write_spans(open_store(str(tmp_path)), records)
    with Store(str(tmp_path)) as store:
        return store.sql(
            "select span_name, handled, error_type from error_occurrences"
            " order by span_name, error_type"
        ).fetchall()


def test_error_caught_by_an_outer_span_is_one_handled_occurrence(tmp_path: Path) -> None:
    """Raised in level2, through level1, caught in level0 (succeeded): one handled row."""
    records = _chain("caught", ["succeeded", "failed", "failed"])
    assert [("level2", True, "KeyError")] == _occurrences(tmp_path, records)


def test_error_escaping_the_local_root_is_one_fatal_occurrence(tmp_path: Path) -> None:
    """Raised in level2 and failing every span up to the root: one fatal row, at level2."""
    records = _chain("escaped", ["failed", "failed", "failed"])
    assert [("level2", False, "KeyError")] == _occurrences(tmp_path, records)


def test_an_error_wrapped_by_an_outer_span_is_handled_and_the_new_one_fatal(
    tmp_path: Path,
) -> None:
    """KeyError turned into an AppError by level0: the KeyError was handled there."""
    app_error = ("AppError", "no order", traceback_text("/app/api.py", "get_order", "AppError"))
    records = _chain("wrapped", ["failed", "failed"], errors=[app_error, None])
    assert [("level0", False, "AppError"), ("level1", True, "KeyError")] == _occurrences(
        tmp_path, records
    )


def test_an_error_logged_where_it_was_caught_is_not_counted_twice(tmp_path: Path) -> None:
    """level0 catches level1's KeyError and logs it (handled_errors): one handled row."""
    records = _chain("logged", ["succeeded", "failed"])
    logged = HandledError(records[1].end_time or 0, *KEY_ERROR)
    records[0] = records[0]._replace(handled_errors=(logged,))
    assert [("level1", True, "KeyError")] == _occurrences(tmp_path, records)


def test_a_callee_root_error_is_fatal_in_the_callee(tmp_path: Path) -> None:
    """A local root continuing a remote caller (seq 1, foreign parent) that failed is fatal."""
    records = _chain("callee", ["failed", "failed"], root_parent=span_id("caller"))
    assert [("level1", False, "KeyError")] == _occurrences(tmp_path, records)


def test_rows_without_seq_compare_processes(tmp_path: Path) -> None:
    """seq 0 (old rows, other tracers): a parent in the same process that succeeded caught it."""
    caught = _chain("old caught", ["succeeded", "failed", "failed"], first_seq=0)
    escaped = _chain("old escaped", ["failed", "failed"], first_seq=0)
    remote = _chain("old remote", ["succeeded", "failed"], first_seq=0)
    remote[1] = remote[1]._replace(pid=999)  # the parent is another process
    rows = _occurrences(tmp_path, [*caught, *escaped, *remote])
    assert [
        ("level1", False, "KeyError"),  # old escaped
        ("level1", False, "KeyError"),  # old remote: escaped its process
        ("level2", True, "KeyError"),  # old caught
    ] == rows


def test_groups_count_occurrences_not_spans_and_health_stays_ok(tmp_path: Path) -> None:
    """Three traces of one caught bug, each through three spans: count 3, handled, health OK."""
    records = [
        span
        for n in range(3)
        for span in _chain(f"route {n}", ["succeeded", "succeeded", "failed", "failed"])
    ]
    write_spans(open_store(str(tmp_path)), records)
    with Store(str(tmp_path)) as store:
        groups = store.sql(
            "select error_type, handled, count, trace_count, level from error_groups"
        ).fetchall()
        health = store.sql("select level, open_groups from health").fetchall()
    assert [("KeyError", True, 3, 3, "OK")] == groups
    assert [("OK", 0)] == health


def test_an_occurrence_lists_every_span_it_failed(tmp_path: Path) -> None:
    """span_ids holds the raising span and each span the exception failed on its way up."""
    records = _chain("listed", ["failed", "failed", "failed"])
    write_spans(open_store(str(tmp_path)), records)
    with Store(str(tmp_path)) as store:
        rows = store.sql("select span_id, span_ids from error_occurrences").fetchall()
    assert [(records[2].span_id, sorted(r.span_id for r in records))] == [
        (span, sorted(ids)) for span, ids in rows
    ]
