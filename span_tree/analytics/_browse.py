"""Span-level browsing for the TUI: names overview, timeline, spans of a name.

Unlike ``dashboard`` (one row per kind of run), these answer per *span name* under the
TUI's filters: status (error / crash / ok), speed (slow / fast against the name's p95),
a time range, tag filters, and a free SQL ``WHERE`` fragment over ``spans``. The
fragment is parsed by DuckDB as exactly one expression (never a statement, never text
spliced into a larger one), so it can narrow rows but not change the query around it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import duckdb

from span_tree.analytics._errors import QueryError

if TYPE_CHECKING:
    import polars as pl

    from span_tree.analytics._store import Store

STATUSES = ("error", "crash", "ok")
SPEEDS = ("slow", "fast")


@dataclass(frozen=True)
class SpanFilter:
    """Which spans to look at; ``None`` means "any".

    Attributes:
        namespace: only this namespace.
        since, until: only spans starting in ``[since, until)`` (datetimes, UTC).
        tags: every key=value must be among the span's tags.
        status: ``error`` (failed), ``crash`` (failed with an error group annotated
            ``crash``) or ``ok`` (succeeded).
        speed: ``slow`` (over the name's p95) or ``fast`` (at or under it).
        where: a SQL boolean expression over the columns of ``spans``.
    """

    namespace: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    tags: Mapping[str, str] | None = None
    status: str | None = None
    speed: str | None = None
    where: str | None = None


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


def filtered_spans_sql(selection: SpanFilter) -> tuple[str, list[Any]]:
    """A ``WITH picked AS (...)`` clause naming the selected spans, and its parameters.

    Raises:
        QueryError: unknown status or speed, or a bad ``where`` expression.
    """
    if selection.status is not None and selection.status not in STATUSES:
        raise QueryError(f"status must be one of {', '.join(STATUSES)}")
    if selection.speed is not None and selection.speed not in SPEEDS:
        raise QueryError(f"speed must be one of {', '.join(SPEEDS)}")
    # Filters on namespace and date reach the files through `spans` (plain scans):
    # DuckDB skips whole partitions, and row groups by start_time statistics.
    clauses: list[str] = ["TRUE"]
    params: list[Any] = []
    if selection.namespace is not None:
        clauses.append("namespace = ?")
        params.append(selection.namespace)
    if selection.since is not None:
        clauses.append("date >= ?")  # the partition column: prunes whole days
        params.append(selection.since.astimezone(UTC).strftime("%Y-%m-%d"))
        clauses.append("start_time >= ?")
        params.append(selection.since)
    if selection.until is not None:
        clauses.append("date <= ?")
        params.append(selection.until.astimezone(UTC).strftime("%Y-%m-%d"))
        clauses.append("start_time < ?")
        params.append(selection.until)
    for key, value in (selection.tags or {}).items():
        clauses.append("tags[?] = ?")
        params.extend([str(key), str(value)])
    inner = "SELECT * FROM spans WHERE " + " AND ".join(f"({c})" for c in clauses)
    if selection.status == "error":
        inner = f"SELECT * FROM ({inner}) WHERE status = 'failed'"
    elif selection.status == "ok":
        inner = f"SELECT * FROM ({inner}) WHERE status = 'succeeded'"
    elif selection.status == "crash":
        inner = (
            f"SELECT * FROM ({inner}) WHERE status = 'failed' AND span_id IN"
            " (SELECT unnest(o.span_ids) FROM error_occurrences o JOIN annotations a"
            " USING (fingerprint) WHERE a.status = 'crash' AND NOT o.handled)"
        )
    if selection.where:
        # The user's expression sees only the columns of `spans`.
        inner = f"SELECT * FROM ({inner}) WHERE ({checked_expression(selection.where)})"
    if selection.speed is not None:
        # "Slow" is judged against the p95 of the same name within the selection.
        compare = ">" if selection.speed == "slow" else "<="
        inner = (
            "SELECT * EXCLUDE (_p95) FROM (SELECT *, quantile_cont(CASE WHEN status"
            " <> 'started' THEN duration_us END, 0.95) OVER (PARTITION BY namespace, app,"
            f" name) AS _p95 FROM ({inner})) WHERE status <> 'started'"
            f" AND duration_us {compare} _p95"
        )
    return f"WITH picked AS ({inner})", params


def _run(store: Store, selection: SpanFilter, query: str, params: list[Any]) -> pl.DataFrame:
    # Spans starting at or after `since` live in the partitions of its day and later:
    # only those are listed.
    first = None
    if selection.since is not None:
        first = selection.since.astimezone(UTC).strftime("%Y-%m-%d")
    try:
        return store._pl(query, params, first_date=first)
    except QueryError as error:
        raise QueryError(f"filter failed: {error}") from None


def names(store: Store, selection: SpanFilter, *, limit: int | None = None) -> pl.DataFrame:
    """One row per span name: status of the latest, ok/failed counts, last time, p50/p99.

    Columns: ``name, status, ok, failed, running, count, last_time, p50_us, p99_us``.
    """
    head, params = filtered_spans_sql(selection)
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
    return _run(store, selection, query, params)


def timeline(store: Store, selection: SpanFilter, *, buckets: int, now: datetime) -> pl.DataFrame:
    """Span volume and failures in ``buckets`` equal time slices.

    The slices run from the first selected span to ``now`` (to the last span when
    ``selection.since`` is not given), so sparse data does not crowd into one corner.
    Columns: ``bucket, spans, errors`` with every bucket present, oldest first.
    """
    import polars as pl

    head, params = filtered_spans_sql(selection)
    end = now if now.tzinfo else now.replace(tzinfo=UTC)
    found = _run(
        store,
        selection,
        f"{head} SELECT min(start_time) AS first, max(start_time) AS last FROM picked",
        params,
    )
    first: datetime | None = found["first"][0] if found.height else None
    if first is not None and selection.since is None:
        end = found["last"][0] + timedelta(microseconds=1)
    empty = {"bucket": list(range(buckets)), "spans": [0] * buckets, "errors": [0] * buckets}
    if first is None or first >= end:
        return pl.DataFrame(empty)
    width_us = max(1, int((end - first).total_seconds() * 1_000_000) // buckets + 1)
    query = (
        f"{head} SELECT CAST((epoch_us(start_time) - epoch_us(?::TIMESTAMPTZ)) // ? AS BIGINT)"
        " AS bucket, count(*) AS spans, count(*) FILTER (status = 'failed') AS errors"
        " FROM picked WHERE start_time >= ? GROUP BY bucket ORDER BY bucket"
    )
    counted = _run(store, selection, query, [*params, first, width_us, first])
    spans = [0] * buckets
    errors = [0] * buckets
    for row in counted.iter_rows(named=True):
        index = min(max(int(row["bucket"]), 0), buckets - 1)
        spans[index] += int(row["spans"])
        errors[index] += int(row["errors"])
    return pl.DataFrame({"bucket": list(range(buckets)), "spans": spans, "errors": errors})


def spans_named(
    store: Store, selection: SpanFilter, *, name: str, limit: int | None = 200
) -> pl.DataFrame:
    """The newest selected spans called ``name`` with their trace's root name.

    Columns: ``trace_id, span_id, name, root_name, status, start_time, duration_us,
    error_type, error_message``.
    """
    head, params = filtered_spans_sql(selection)
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
    return _run(store, selection, query, [*params, name, limit if limit is not None else 2**62])
