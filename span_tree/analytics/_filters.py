"""Filters shared by the Store helpers: turned into a WHERE clause with bound parameters.

Column names come from code, never from the caller; every value is a ``?`` parameter.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from span_tree.storage import parse_age

TimeLike = datetime | str | None


def parse_time(value: TimeLike, *, now: datetime | None = None) -> datetime | None:
    """Read a time filter: a datetime, an ISO 8601 text, or a relative age like ``2h``.

    Naive datetimes are taken as UTC. ``"30m"`` means thirty minutes before ``now``
    (ages as ``span_tree.storage.parse_age`` reads them; a bare number is days).

    Raises:
        ValueError: the text is neither ISO 8601 nor an age.
    """
    if value is None or isinstance(value, datetime):
        if isinstance(value, datetime) and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value
    try:
        return (now or datetime.now(tz=UTC)) - parse_age(value)
    except ValueError:
        pass  # not an age: an ISO 8601 time
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"cannot read time {value!r}: use ISO 8601 (2026-01-31T12:00) or an age like 2h, 3d"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# A query for Store to run: SQL text and its bound parameters.
Query = tuple[str, list[Any]]

# `Filters.status`: a status column value, or "crash" (failed in an error group
# annotated crash, and not handled).
STATUSES = ("succeeded", "failed", "started", "crash")
SPEEDS = ("slow", "fast")


@dataclass(frozen=True)
class Filters:
    """Which rows a Store question is about; ``None`` means "any".

    The one filter of every Store question: the reports (``traces``, ``slow``,
    ``errors``...) and the span browsing of the TUI (``span_names``...).

    Attributes:
        namespace: only this namespace.
        app: only this app.
        since: only rows at or after this time (datetime, ISO text or age like ``1d``).
        until: only rows before this time.
        tags: only rows whose tags include every given key=value.
        status: only this status (``succeeded``, ``failed``, ``started``), or
            ``crash``: failed with an error group annotated ``crash``.
        name: only this span (or trace root) name.
        speed: ``slow`` (over the name's p95) or ``fast`` (at or under it).
        where: a SQL boolean expression over the columns of ``spans`` (checked to be
            exactly one expression; span browsing only).
    """

    namespace: str | None = None
    app: str | None = None
    since: TimeLike = None
    until: TimeLike = None
    tags: Mapping[str, str] | None = None
    status: str | None = None
    name: str | None = None
    speed: str | None = None
    where: str | None = None

    def clause(
        self,
        *,
        time_column: str = "start_time",
        name_column: str = "name",
        status_column: str | None = "status",
        tags_column: str | None = "tags",
    ) -> Query:
        """Return ``(" WHERE ...", params)`` (empty text when nothing filters).

        ``speed`` and ``where`` are left to the span browsing queries.
        """
        clauses: list[str] = []
        params: list[Any] = []

        def add(clause: str, *values: Any) -> None:
            clauses.append(clause)
            params.extend(values)

        if self.namespace is not None:
            add("namespace = ?", self.namespace)
        if self.app is not None:
            add("app = ?", self.app)
        since, until = parse_time(self.since), parse_time(self.until)
        if since is not None:
            add(f"{time_column} >= ?", since)
        if until is not None:
            add(f"{time_column} < ?", until)
        if self.status is not None and status_column is not None:
            add(f"{status_column} = ?", self.status)
        if self.name is not None:
            add(f"{name_column} = ?", self.name)
        if self.tags and tags_column is not None:
            for key, value in self.tags.items():
                add(f"{tags_column}[?] = ?", str(key), str(value))
        if not clauses:
            return "", []
        return " WHERE " + " AND ".join(clauses), params
