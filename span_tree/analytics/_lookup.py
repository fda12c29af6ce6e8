"""Find one trace fast by KSUID, 32-hex W3C id or unique prefix.

KSUIDs are time-ordered and their text sorts like their bytes, so an id (or a prefix,
read as the range of ids it could complete to) names the day partitions that can hold
the trace, and the writer's ``trace_id`` sort order lets DuckDB skip row groups by
their min/max statistics. A 32-hex id carries no time, so it is matched against the
ids of each day, newest day first.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import timedelta

import duckdb

from span_tree._ids import (
    KSUID_LENGTH,
    is_trace_id,
    is_w3c_trace_id,
    trace_id_timestamp,
    w3c_trace_id,
)
from span_tree._record import utc_day
from span_tree.analytics._errors import AmbiguousTraceId, TraceNotFound
from span_tree.analytics._source import file_date, read_spans_sql

_BASE62_RE = re.compile(r"^[0-9A-Za-z]+$")
_CANDIDATE_LIMIT = 20


def _day(unix_time: float) -> str:
    return utc_day(int(unix_time * 1_000_000))


def _files_between(files: Sequence[str], first: str | None, last: str | None) -> list[str]:
    chosen = []
    for path in files:
        day = file_date(path)
        if day is None or ((first is None or day >= first) and (last is None or day <= last)):
            chosen.append(path)
    return chosen


def _day_range(lower: str, upper: str) -> tuple[str | None, str | None]:
    """Partition days that can hold traces with ids in [lower, upper].

    A trace's spans start at or after its id's timestamp, within a day for all but the
    longest traces, so the range ends a day after the upper id's day.
    """
    try:
        first: str | None = _day(trace_id_timestamp(lower))
    except (ValueError, OverflowError):
        first = None
    try:
        last: str | None = _day(trace_id_timestamp(upper) + timedelta(days=1).total_seconds())
    except (ValueError, OverflowError):
        last = None
    return first, last


def _ids_in_range(
    con: duckdb.DuckDBPyConnection, files: Sequence[str], lower: str, upper: str
) -> list[str]:
    if not files:
        return []
    rows = con.execute(
        f"SELECT DISTINCT trace_id FROM {read_spans_sql(files)}"
        " WHERE trace_id BETWEEN ? AND ? ORDER BY trace_id LIMIT ?",
        [lower, upper, _CANDIDATE_LIMIT],
    ).fetchall()
    return [row[0] for row in rows]


def _id_for_w3c(con: duckdb.DuckDBPyConnection, files: Sequence[str], hex_id: str) -> str | None:
    days = sorted({file_date(path) or "" for path in files}, reverse=True)
    for day in days:
        day_files = [path for path in files if (file_date(path) or "") == day]
        rows = con.execute(f"SELECT DISTINCT trace_id FROM {read_spans_sql(day_files)}").fetchall()
        for (trace_id,) in rows:
            if is_trace_id(trace_id) and w3c_trace_id(trace_id) == hex_id:
                return str(trace_id)
    return None


def resolve_trace_id(
    con: duckdb.DuckDBPyConnection, files: Sequence[str], text: str
) -> tuple[str, list[str]]:
    """Resolve ``text`` to one trace id and the files that may hold its spans.

    Raises:
        TraceNotFound: nothing matches (or ``text`` cannot be a trace id).
        AmbiguousTraceId: a prefix matches several traces.
    """
    text = text.strip()
    if is_w3c_trace_id(text.lower()):
        found = _id_for_w3c(con, files, text.lower())
        if found is None:
            raise TraceNotFound(text)
        text = found
    if not text or len(text) > KSUID_LENGTH or not _BASE62_RE.match(text):
        raise TraceNotFound(text)
    lower = text.ljust(KSUID_LENGTH, "0")
    upper = text.ljust(KSUID_LENGTH, "z")
    first, last = _day_range(lower, upper)
    pruned = _files_between(files, first, last)
    matches = _ids_in_range(con, pruned, lower, upper)
    if not matches and len(pruned) < len(files):
        # Ids from foreign systems (or very long traces) may sit outside their day.
        matches = _ids_in_range(con, files, lower, upper)
        pruned = list(files)
    if not matches:
        raise TraceNotFound(text)
    if len(matches) > 1:
        raise AmbiguousTraceId(text, matches, more=len(matches) >= _CANDIDATE_LIMIT)
    return matches[0], pruned


def trace_table_sql(files: Sequence[str]) -> str:
    """SQL of every span version of one trace (bind the trace id as ``?``)."""
    return f"SELECT * FROM {read_spans_sql(files)} WHERE trace_id = ?"


def exact_trace_files(files: Sequence[str], trace_id: str) -> list[str]:
    """The files that can hold the spans of a full KSUID ``trace_id`` (its day and the next)."""
    first, last = _day_range(trace_id, trace_id)
    return _files_between(files, first, last)
