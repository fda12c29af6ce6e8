"""The queries behind the Store's typed helpers: a view, the filters, an order.

Each function returns ``(sql, params)``; column names come from code and every value
the caller gave is a bound parameter.
"""

from __future__ import annotations

from dataclasses import replace

from span_tree.analytics._filters import Filters, Query

# The slow_spans columns for an explicit threshold instead of the name's p95.
_SPANS_OVER_THRESHOLD = """(
    SELECT s.namespace, s.app, s.name, s.trace_id, s.span_id, s.status, s.start_time,
        s.duration_us, st.p50_us, st.p95_us, s.duration_us / st.p95_us AS p95_ratio, s.tags
    FROM spans AS s JOIN span_stats AS st USING (namespace, app, name)
    WHERE s.status <> 'started' AND s.duration_us >= ?
)"""


def limited(query: Query, limit: int | None) -> Query:
    """Add ``LIMIT ?`` when ``limit`` is given."""
    sql, params = query
    if limit is None:
        return sql, params
    return f"{sql} LIMIT ?", [*params, int(limit)]


def traces(filters: Filters) -> Query:
    """Rows of ``traces``, newest first; ``filters.name`` matches the root span."""
    where, params = filters.clause(name_column="root_name")
    return f"SELECT * FROM traces{where} ORDER BY start_time DESC, trace_id DESC", params


def slow(filters: Filters, *, threshold_us: int | None) -> Query:
    """Rows of ``slow_spans`` (or spans over ``threshold_us``), slowest first."""
    where, params = filters.clause()
    source = "slow_spans"
    if threshold_us is not None:
        source = _SPANS_OVER_THRESHOLD
        params = [int(threshold_us), *params]
    return f"SELECT * FROM {source}{where} ORDER BY duration_us DESC, span_id", params


def errors(filters: Filters, *, status: str | None, handled: bool | None) -> Query:
    """Rows of ``error_groups`` with an occurrence matching ``filters``, widest first.

    ``filters.status`` is ignored: ``status`` is the group's annotation status.
    """
    occurrences = replace(filters, status=None)
    inner, params = occurrences.clause(time_column="time", name_column="span_name")
    clauses = []
    if inner:
        clauses.append(f"fingerprint IN (SELECT fingerprint FROM error_occurrences{inner})")
    if status is not None:
        clauses.append("status = ?")
        params.append(status)
    if handled is not None:
        clauses.append("handled = ?")
        params.append(bool(handled))
    where = " WHERE " + " AND ".join(clauses) if clauses else ""
    order = " ORDER BY trace_count DESC, count DESC, last_seen DESC, fingerprint"
    return f"SELECT * FROM error_groups{where}{order}", params


def dashboard(filters: Filters) -> Query:
    """Rows of ``dashboard``, latest run first."""
    where, params = filters.clause()
    return f"SELECT * FROM dashboard{where} ORDER BY last_time DESC, name", params


def span_stats(filters: Filters) -> Query:
    """Rows of ``span_stats``, most frequent first."""
    where, params = filters.clause()
    return f"SELECT * FROM span_stats{where} ORDER BY count DESC, name", params


def health(filters: Filters) -> Query:
    """Rows of ``health``, worst level first."""
    where, params = filters.clause()
    order = " ORDER BY list_position(['ALERT', 'WARN', 'OK'], level), namespace, app"
    return f"SELECT * FROM health{where}{order}", params
