"""Span-level browsing for the TUI: the queries of the span names list and its timeline.

These answer per *span name* (every span, not only roots) under ``Filters``: status
(``failed``, ``succeeded``, ``started`` or ``crash``), speed (``slow`` / ``fast``
against the name's p95), a time range, tag filters, and a free SQL ``where`` expression
over ``spans``. The expression is parsed by DuckDB as exactly one expression (never a
statement, never text spliced into a larger one), so it can narrow rows but not change
the query around it. Like ``_reports``, each function returns a query; ``Store`` runs it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import duckdb

from span_tree.analytics._errors import QueryError
from span_tree.analytics._filters import SPEEDS, STATUSES, Filters, Query, parse_time

if TYPE_CHECKING:
    import polars as pl

# The statuses that are a plain column value (the rest need a query of their own).
_COLUMN_STATUSES = ("succeeded", "failed", "started")


def checked_expression(text: str) -> str:
    """Return ``text`` re-serialised by DuckDB after checking it is one SQL expression.

    Raises:
        QueryError: it does not parse as exactly one expression.
    """
    try:
        return str(duckdb.SQLExpression(text))
    except duckdb.Error as error:
        message = str(error).strip().splitlines()[0]
        raise QueryError(f"bad filter {text!r}: {message}") from None


def first_date(filters: Filters) -> str | None:
    """The first date partition the spans under ``filters`` can be in (None: all).

    Spans starting at or after ``since`` live in the partitions of its day and later.
    """
    since = parse_time(filters.since)
    return None if since is None else since.astimezone(UTC).strftime("%Y-%m-%d")


def filtered_spans(filters: Filters) -> Query:
    """A ``WITH picked AS (...)`` clause naming the selected spans, and its parameters.

    ``filters.name`` and ``filters.app`` narrow too; each question adds its own on top.

    Raises:
        QueryError: unknown status or speed, or a bad ``where`` expression.
    """
    if filters.status is not None and filters.status not in STATUSES:
        raise QueryError(f"status must be one of {', '.join(STATUSES)}")
    if filters.speed is not None and filters.speed not in SPEEDS:
        raise QueryError(f"speed must be one of {', '.join(SPEEDS)}")
    # Filters on namespace and date reach the files through `spans` (plain scans):
    # DuckDB skips whole partitions, and row groups by start_time statistics.
    clauses: list[str] = ["TRUE"]
    params: list[Any] = []
    if filters.namespace is not None:
        clauses.append("namespace = ?")
        params.append(filters.namespace)
    if filters.app is not None:
        clauses.append("app = ?")
        params.append(filters.app)
    if filters.name is not None:
        clauses.append("name = ?")
        params.append(filters.name)
    since, until = parse_time(filters.since), parse_time(filters.until)
    if since is not None:
        clauses.append("date >= ?")  # the partition column: prunes whole days
        params.append(since.astimezone(UTC).strftime("%Y-%m-%d"))
        clauses.append("start_time >= ?")
        params.append(since)
    if until is not None:
        clauses.append("date <= ?")
        params.append(until.astimezone(UTC).strftime("%Y-%m-%d"))
        clauses.append("start_time < ?")
        params.append(until)
    for key, value in (filters.tags or {}).items():
        clauses.append("tags[?] = ?")
        params.extend([str(key), str(value)])
    inner = "SELECT * FROM spans WHERE " + " AND ".join(f"({c})" for c in clauses)
    if filters.status in _COLUMN_STATUSES:
        inner = f"SELECT * FROM ({inner}) WHERE status = ?"
        params.append(filters.status)
    elif filters.status == "crash":
        inner = (
            f"SELECT * FROM ({inner}) WHERE status = 'failed' AND span_id IN"
            " (SELECT unnest(o.span_ids) FROM error_occurrences o JOIN annotations a"
            " USING (fingerprint) WHERE a.status = 'crash' AND NOT o.handled)"
        )
    if filters.where:
        # The user's expression sees only the columns of `spans`.
        inner = f"SELECT * FROM ({inner}) WHERE ({checked_expression(filters.where)})"
    if filters.speed is not None:
        # "Slow" is judged against the p95 of the same name within the selection.
        compare = ">" if filters.speed == "slow" else "<="
        inner = (
            "SELECT * EXCLUDE (_p95) FROM (SELECT *, quantile_cont(CASE WHEN status"
            " <> 'started' THEN duration_us END, 0.95) OVER (PARTITION BY namespace, app,"
            f" name) AS _p95 FROM ({inner})) WHERE status <> 'started'"
            f" AND duration_us {compare} _p95"
        )
    return f"WITH picked AS ({inner})", params


def names(filters: Filters, *, limit: int | None = None) -> Query:
    """One row per span name: status of the latest, ok/failed counts, last time, p50/p99.

    Columns: ``name, status, ok, failed, running, count, last_time, p50_us, p99_us``.
    """
    head, params = filtered_spans(filters)
    query = (
        f"{head} SELECT name, arg_max(status, start_time) AS status,"
        " count(*) FILTER (status = 'succeeded') AS ok,"
        " count(*) FILTER (status = 'failed') AS failed,"
        " count(*) FILTER (status = 'started') AS running,"
        " count(*) AS count, max(start_time) AS last_time,"
        " quantile_cont(duration_us, 0.5) AS p50_us, quantile_cont(duration_us, 0.99) AS p99_us"
        " FROM picked GROUP BY name ORDER BY last_time DESC, name"
    )
    if limit is not None:
        query += " LIMIT ?"
        params = [*params, int(limit)]
    return query, params


def time_range(filters: Filters) -> Query:
    """The first and last start time of the selected spans (columns ``first, last``)."""
    head, params = filtered_spans(filters)
    return f"{head} SELECT min(start_time) AS first, max(start_time) AS last FROM picked", params


def timeline_window(
    filters: Filters, found: pl.DataFrame, *, buckets: int, now: datetime
) -> tuple[datetime, int] | None:
    """Where a timeline of ``buckets`` slices starts and how wide a slice is (µs).

    The slices run from the first selected span (``found``: the answer of
    ``time_range``) to ``now`` (to the last span when ``filters.since`` is not given),
    so sparse data does not crowd into one corner. None: nothing to show.
    """
    end = now if now.tzinfo else now.replace(tzinfo=UTC)
    first: datetime | None = found["first"][0] if found.height else None
    if first is not None and filters.since is None:
        end = found["last"][0] + timedelta(microseconds=1)
    if first is None or first >= end:
        return None
    return first, max(1, int((end - first).total_seconds() * 1_000_000) // buckets + 1)


def timeline(filters: Filters, *, first: datetime, width_us: int) -> Query:
    """Selected span volume and failures per slice of ``width_us`` from ``first``.

    Columns: ``bucket, spans, errors``; only buckets holding spans.
    """
    head, params = filtered_spans(filters)
    query = (
        f"{head} SELECT CAST((epoch_us(start_time) - epoch_us(?::TIMESTAMPTZ)) // ? AS BIGINT)"
        " AS bucket, count(*) AS spans, count(*) FILTER (status = 'failed') AS errors"
        " FROM picked WHERE start_time >= ? GROUP BY bucket ORDER BY bucket"
    )
    return query, [*params, first, width_us, first]


def every_bucket(counted: pl.DataFrame | None, buckets: int) -> pl.DataFrame:
    """``counted`` (the answer of ``timeline``) with every bucket present, oldest first.

    Columns: ``bucket, spans, errors``.
    """
    import polars as pl

    spans = [0] * buckets
    errors = [0] * buckets
    for row in counted.iter_rows(named=True) if counted is not None else ():
        index = min(max(int(row["bucket"]), 0), buckets - 1)
        spans[index] += int(row["spans"])
        errors[index] += int(row["errors"])
    return pl.DataFrame({"bucket": list(range(buckets)), "spans": spans, "errors": errors})


def spans_named(filters: Filters, *, name: str, limit: int | None = 200) -> Query:
    """The newest selected spans called ``name`` with their trace's root name.

    Columns: ``trace_id, span_id, name, root_name, status, start_time, duration_us,
    error_type, error_message``.
    """
    head, params = filtered_spans(filters)
    # Root names only for the traces shown: the `traces` view would aggregate everything.
    query = (
        f"{head}, top AS (SELECT * FROM picked WHERE name = ?"
        " ORDER BY start_time DESC, span_id LIMIT ?)"
        " SELECT p.trace_id, p.span_id, p.name, r.root_name, p.status, p.start_time,"
        " p.duration_us, p.error_type, p.error_message FROM top AS p LEFT JOIN ("
        " SELECT trace_id, arg_min(name, start_time) AS root_name FROM spans"
        " WHERE parent_id IS NULL AND trace_id IN (SELECT trace_id FROM top)"
        " GROUP BY trace_id) AS r USING (trace_id)"
        " ORDER BY p.start_time DESC, p.span_id"
    )
    return query, [*params, name, limit if limit is not None else 2**62]
