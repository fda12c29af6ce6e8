"""Find one trace fast by KSUID, 32-hex W3C id or unique prefix.

KSUIDs are time-ordered and their text sorts like their bytes, so an id (or a prefix,
read as the range of ids it could complete to) names the day partitions that can hold
the trace, and the writer's ``trace_id`` sort order lets DuckDB skip row groups by
their min/max statistics. A foreign id (a KSUID whose timestamp is 0: the 128-bit id of
another system, see ``span_tree._ids.trace_id_from_w3c``) names no day: every day is
searched, still pruned by the statistics. A 32-hex id is either such a foreign id or
the payload of a native KSUID, matched against the ids of each day, newest day first.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import duckdb

from span_tree._ids import (
    KSUID_LENGTH,
    is_trace_id,
    is_w3c_trace_id,
    trace_id_from_w3c,
    trace_id_timestamp,
    w3c_trace_id,
)
from span_tree._record import utc_day
from span_tree.analytics._errors import AmbiguousTraceId, TraceNotFound

_BASE62_RE = re.compile(r"^[0-9A-Za-z]+$")
_CANDIDATE_LIMIT = 20
_DAY = timedelta(days=1).total_seconds()


def _day(unix_time: float) -> str:
    return utc_day(int(unix_time * 1_000_000))


def id_day(trace_id: str) -> str | None:
    """The day a trace's spans start from (its id's day, a day earlier for clock skew
    between hosts), or ``None`` for a foreign id, which names no day."""
    try:
        if trace_id_from_w3c(w3c_trace_id(trace_id)) == trace_id:
            return None  # a foreign id (timestamp field 0)
        return _day(trace_id_timestamp(trace_id) - _DAY)
    except (ValueError, OverflowError):
        return None


def _next_day(day: str, days: int = 1) -> str:
    from datetime import date

    return (date.fromisoformat(day) + timedelta(days=days)).isoformat()


def trace_table(con: duckdb.DuckDBPyConnection, trace_id: str, first_day: str | None) -> Any:
    """Every span version of one trace, as a pyarrow Table.

    From ``first_day`` (``None``: every day), the days a trace usually covers are read
    first; only if a span found there ends later (or still runs) are later days read,
    as far as it reaches, so a trace spanning several days keeps all its spans.
    """
    base = "SELECT * FROM span_versions WHERE trace_id = ?"
    if first_day is None:
        return con.sql(base, params=[trace_id]).to_arrow_table()
    last = _next_day(first_day, 2)  # skew day, the id's day and the next one
    found = con.sql(
        f"{base} AND date >= ? AND date <= ?", params=[trace_id, first_day, last]
    ).to_arrow_table()
    if found.num_rows == 0:
        return found
    import pyarrow as pa
    import pyarrow.compute as pc

    ends = found.column("end_time")
    running = ends.null_count > 0
    latest = pc.max(ends).as_py()
    if not running and (latest is None or latest.strftime("%Y-%m-%d") <= last):
        return found

    params: list[Any] = [trace_id, last]
    query = f"{base} AND date > ?"
    if not running:
        query += " AND date <= ?"
        params.append(latest.strftime("%Y-%m-%d"))
    later = con.sql(query, params=params).to_arrow_table()
    return pa.concat_tables([found, later], promote_options="permissive")


def resolve_trace_id(con: duckdb.DuckDBPyConnection, text: str, dates: Sequence[str]) -> str:
    """Resolve ``text`` (KSUID, 32-hex id or prefix) to one stored trace id.

    Args:
        con: a connection with the ``span_versions`` view over every listed day.
        text: what the user gave.
        dates: the listed days, for the day-by-day search of a native 32-hex id.

    Raises:
        TraceNotFound: nothing matches (or ``text`` cannot be a trace id).
        AmbiguousTraceId: a prefix matches several traces.
    """
    text = text.strip()
    if is_w3c_trace_id(text.lower()):
        found = _id_for_w3c(con, text.lower(), dates)
        if found is None:
            raise TraceNotFound(text)
        return found
    if not text or len(text) > KSUID_LENGTH or not _BASE62_RE.match(text):
        raise TraceNotFound(text)
    lower = text.ljust(KSUID_LENGTH, "0")
    upper = text.ljust(KSUID_LENGTH, "z")
    matches = _ids_in_range(con, lower, upper, _day_range(lower, upper))
    if not matches:
        # Ids from foreign systems (or very long traces) may sit outside their day.
        matches = _ids_in_range(con, lower, upper, (None, None))
    if not matches:
        raise TraceNotFound(text)
    if len(matches) > 1:
        raise AmbiguousTraceId(text, matches, more=len(matches) >= _CANDIDATE_LIMIT)
    return matches[0]


def _day_range(lower: str, upper: str) -> tuple[str | None, str | None]:
    """Partition days that can hold traces with ids in [lower, upper]."""
    try:
        first: str | None = _day(trace_id_timestamp(lower) - _DAY)
    except (ValueError, OverflowError):
        first = None
    try:
        last: str | None = _day(trace_id_timestamp(upper) + _DAY)
    except (ValueError, OverflowError):
        last = None
    return first, last


def _ids_in_range(
    con: duckdb.DuckDBPyConnection,
    lower: str,
    upper: str,
    days: tuple[str | None, str | None],
) -> list[str]:
    query = "SELECT DISTINCT trace_id FROM span_versions WHERE trace_id BETWEEN ? AND ?"
    params: list[Any] = [lower, upper]
    if days[0] is not None:
        query += " AND date >= ?"
        params.append(days[0])
    if days[1] is not None:
        query += " AND date <= ?"
        params.append(days[1])
    rows = con.execute(f"{query} ORDER BY trace_id LIMIT ?", [*params, _CANDIDATE_LIMIT])
    return [row[0] for row in rows.fetchall()]


def _id_for_w3c(con: duckdb.DuckDBPyConnection, hex_id: str, dates: Sequence[str]) -> str | None:
    foreign = trace_id_from_w3c(hex_id)
    found = con.execute(
        "SELECT trace_id FROM span_versions WHERE trace_id = ? LIMIT 1", [foreign]
    ).fetchall()
    if found:
        return foreign
    for day in sorted(set(dates), reverse=True):
        rows = con.execute(
            "SELECT DISTINCT trace_id FROM span_versions WHERE date = ?", [day]
        ).fetchall()
        for (trace_id,) in rows:
            if is_trace_id(trace_id) and w3c_trace_id(trace_id) == hex_id:
                return str(trace_id)
    return None
