"""The TUI's one door to the data: typed rows from ``span_tree.analytics.Store`` calls.

No SQL lives here (or anywhere in the TUI): every question is a ``Store`` method. This
module only turns the Store's answers into small frozen rows the screens render, and
every failure into ``SourceError`` whose text is fit to show a person. Calls are
serialised by a lock because Textual runs them on worker threads and one DuckDB
connection must not run two queries at once.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from span_tree._record import FinishedSpan

if TYPE_CHECKING:
    from span_tree import analytics
    from span_tree.analytics import Store

T = TypeVar("T")

STATUS_FILTERS = ("all", "error", "crash", "ok")
# The status each choice asks the Store for (``analytics.Filters.status``).
_STATUS_OF_CHOICE = {"all": None, "error": "failed", "crash": "crash", "ok": "succeeded"}
SPEED_FILTERS = ("all", "slow", "fast")
# Time ranges the span names screen cycles through: label, seconds back from "now" (None: all).
TIME_RANGES: tuple[tuple[str, int | None], ...] = (
    ("15m", 15 * 60),
    ("1h", 3_600),
    ("24h", 86_400),
    ("7d", 7 * 86_400),
    ("all", None),
)
_TAG_RE = re.compile(r"^[A-Za-z_][\w.\-]*=[^\s'\"=]+$")


class SourceError(Exception):
    """A question to the store failed; ``str()`` is a one-line message for the screen."""


@dataclass(frozen=True)
class FilterChoices:
    """What the user narrowed the span names (and their spans) to: the labels shown and
    cycled on screen; ``for_store`` turns them into the Store's one filter,
    ``span_tree.analytics.Filters``.

    Attributes:
        status: ``all`` | ``error`` (failed spans) | ``crash`` (failed roots, i.e.
            traces that ended in an error) | ``ok``.
        speed: ``all`` | ``slow`` (over the name's p95) | ``fast``.
        query: ``key=value`` tag filters separated by spaces, or a SQL ``WHERE``
            fragment over ``spans`` that the Store runs safely.
        time_range: a label of ``TIME_RANGES``.
    """

    status: str = "all"
    speed: str = "all"
    query: str = ""
    # Recent data by default: on a big store a day is quick to read, everything is not.
    time_range: str = "24h"

    def cycled(self, attribute: str, choices: tuple[str, ...]) -> FilterChoices:
        """A copy with ``attribute`` moved to the next of ``choices``."""
        current = getattr(self, attribute)
        following = choices[(choices.index(current) + 1) % len(choices)]
        return replace(self, **{attribute: following})

    @property
    def tags(self) -> dict[str, str]:
        """The tag filters of ``query`` when it is only ``key=value`` words, else ``{}``."""
        words = self.query.split()
        if words and all(_TAG_RE.match(word) for word in words):
            return dict(word.split("=", 1) for word in words)
        return {}

    @property
    def where(self) -> str | None:
        """The SQL ``WHERE`` fragment of ``query`` (``None`` when it is tag filters)."""
        text = self.query.strip()
        return None if not text or self.tags else text

    def since_us(self, now_us: int) -> int | None:
        """Start of the time range in µs since the epoch (``None``: no lower bound)."""
        seconds = dict(TIME_RANGES)[self.time_range]
        return None if seconds is None else now_us - seconds * 1_000_000

    def for_store(self, namespace: str, now_us: int) -> analytics.Filters:
        """The Store's filter for these choices in ``namespace`` (``""``: all), at ``now_us``."""
        from span_tree.analytics import Filters as StoreFilters

        since = self.since_us(now_us)
        return StoreFilters(
            namespace=namespace or None,
            since=None if since is None else _datetime(since),
            tags=self.tags or None,
            status=_STATUS_OF_CHOICE[self.status],
            speed=None if self.speed == "all" else self.speed,
            where=self.where,
        )

    def describe(self) -> str:
        """One line saying which filters are on."""
        parts = [f"status:{self.status}", f"speed:{self.speed}", f"range:{self.time_range}"]
        if self.query.strip():
            parts.append(f"filter:{self.query.strip()}")
        return "  ".join(parts)


@dataclass(frozen=True)
class NameRow:
    """One row of the span names screen: a span name and how it behaves."""

    name: str
    status: str
    ok: int
    failed: int
    last_us: int | None
    p50_us: int | None
    p99_us: int | None


@dataclass(frozen=True)
class Timeline:
    """Span volume and errors per time bucket, oldest first."""

    volume: list[int] = field(default_factory=list)
    errors: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class SpanRow:
    """One span in the list of spans of a name."""

    trace_id: str
    span_id: str
    root_name: str
    start_us: int | None
    duration_us: int | None
    status: str
    error: str


@dataclass(frozen=True)
class ErrorGroupRow:
    """One error group (fingerprint) with its annotation."""

    fingerprint: str
    error_type: str
    message: str
    location: str
    handled: bool
    count: int
    first_us: int | None
    last_us: int | None
    sample_trace: str | None
    annotation: str | None  # open | crash | silenced
    level: str | None  # OK | WARN | ALERT | None
    note: str | None


def _micros(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        from span_tree._record import us_from_iso

        return us_from_iso(value.isoformat())
    return int(value)


def _rows(result: Any) -> list[dict[str, Any]]:
    """Rows of a Store answer as dicts, whatever its form (polars, DuckDB, list)."""
    if result is None:
        return []
    if hasattr(result, "to_dicts"):
        rows: list[dict[str, Any]] = result.to_dicts()
        return rows
    if hasattr(result, "pl"):
        return _rows(result.pl())
    listed = list(result)
    if listed and isinstance(listed[0], Mapping):
        return [dict(row) for row in listed]
    if listed and hasattr(listed[0], "_asdict"):
        return [row._asdict() for row in listed]
    if listed and hasattr(listed[0], "__dataclass_fields__"):
        return [dict(vars(row)) for row in listed]
    return [dict(row) for row in listed]


class StoreSource:
    """The store behind the TUI: one ``Store`` per namespace, opened when first needed.

    A ``Store`` scoped to one namespace lists and reads only that namespace's files, so
    opening a big store on one namespace costs a fraction of opening all of it. Stores
    are opened lazily, on a worker thread, so a slow or unreachable store never freezes
    the first frame.

    Args:
        url: store path or fsspec URL (``None``: the local store).
        storage_options: fsspec options for object stores.
        only_namespace: read this namespace and nothing else (``spantree web`` opened
            with an API key shows its key's namespace only): the picker lists it alone
            and a trace id is not looked up in the rest of the store.
    """

    def __init__(
        self,
        url: str | None,
        *,
        storage_options: Mapping[str, Any] | None = None,
        only_namespace: str | None = None,
    ) -> None:
        from span_tree._config import default_store

        self.url = url
        self.storage_options = dict(storage_options or {})
        self.only_namespace = only_namespace or None
        self.label = url or default_store()
        self._stores: dict[str | None, Store] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_url(
        cls,
        url: str | None,
        *,
        storage_options: Mapping[str, Any] | None = None,
        only_namespace: str | None = None,
    ) -> StoreSource:
        """A source over the store at ``url`` (``None``: the local store)."""
        return cls(url, storage_options=storage_options, only_namespace=only_namespace)

    def _store(self, namespace: str | None) -> Store:
        key = namespace or None
        if self.only_namespace is not None and key != self.only_namespace:
            raise SourceError(f"only namespace {self.only_namespace!r} can be read here")
        if key not in self._stores:
            from span_tree.analytics import Store

            self._stores[key] = Store(self.url, storage_options=self.storage_options, namespace=key)
        return self._stores[key]

    def _call(self, namespace: str | None, question: Callable[[Store], T]) -> T:
        with self._lock:
            try:
                return question(self._store(namespace))
            except SourceError:
                raise
            except Exception as error:  # every failure becomes a message, never a traceback
                raise SourceError(_one_line(error)) from error

    def namespaces(self) -> list[str]:
        """The namespaces present in the store, sorted (a directory listing, no reads)."""
        from span_tree.storage import list_partitions, open_store

        with self._lock:
            try:
                location = open_store(self.url, storage_options=self.storage_options)
                if location.is_local and not os.path.isdir(location.root):
                    raise SourceError(
                        f"no store at {location.root} (run `spantree demo --store"
                        f" {location.root}` to create one)"
                    )
                if self.only_namespace is not None:
                    return [self.only_namespace]
                return sorted({partition.namespace for partition in list_partitions(location)})
            except SourceError:
                raise
            except Exception as error:
                raise SourceError(_one_line(error)) from error

    def warm(self, namespace: str) -> None:
        """Open the namespace's Store now (cheap: its files are listed by the first
        question, only the days that question's time range needs)."""
        self._call(namespace, lambda store: None)

    def refresh(self, namespace: str) -> None:
        """Re-list the namespace's files so spans written since opening show up."""
        self._call(namespace, lambda store: store.refresh())

    def span_names(self, namespace: str, filters: FilterChoices, *, now_us: int) -> list[NameRow]:
        """One row per span name of ``namespace`` under ``filters``."""
        selection = filters.for_store(namespace, now_us)
        result = self._call(namespace, lambda store: store.span_names(selection))
        return [
            NameRow(
                name=str(row["name"]),
                status=str(row["status"]),
                ok=int(row["ok"]),
                failed=int(row["failed"]),
                last_us=_micros(row["last_time"]),
                p50_us=_micros(row["p50_us"]),
                p99_us=_micros(row["p99_us"]),
            )
            for row in _rows(result)
        ]

    def timeline(
        self, namespace: str, filters: FilterChoices, *, now_us: int, buckets: int
    ) -> Timeline:
        """Span volume and errors of ``namespace`` in ``buckets`` equal time slices."""
        selection = filters.for_store(namespace, now_us)
        now = _datetime(now_us)
        result = self._call(
            namespace, lambda store: store.span_timeline(selection, buckets=buckets, now=now)
        )
        rows = _rows(result)
        return Timeline(
            volume=[int(row["spans"]) for row in rows],
            errors=[int(row["errors"]) for row in rows],
        )

    def spans_named(
        self, namespace: str, filters: FilterChoices, *, now_us: int, name: str, limit: int
    ) -> list[SpanRow]:
        """The newest spans called ``name`` in ``namespace`` under ``filters``."""
        selection = filters.for_store(namespace, now_us)
        result = self._call(
            namespace, lambda store: store.spans_named(selection, name=name, limit=limit)
        )
        return [
            SpanRow(
                trace_id=str(row["trace_id"]),
                span_id=str(row["span_id"]),
                root_name=str(row["root_name"] or ""),
                start_us=_micros(row["start_time"]),
                duration_us=_micros(row["duration_us"]),
                status=str(row["status"]),
                error=(
                    f"{row['error_type']}: {row['error_message'] or ''}"
                    if row["error_type"]
                    else ""
                ),
            )
            for row in _rows(result)
        ]

    def trace(self, namespace: str, trace_id: str) -> list[FinishedSpan]:
        """Every span of one trace (KSUID, 32-hex W3C id or unique prefix).

        Looked up in ``namespace`` first, then in the whole store (unless the source
        reads only one namespace).
        """
        from span_tree.analytics import TraceNotFound

        try:
            return list(self._call(namespace, lambda store: store.trace(trace_id)))
        except SourceError as error:
            if not namespace or not isinstance(error.__cause__, TraceNotFound):
                raise
            if self.only_namespace is not None:
                raise
        return list(self._call(None, lambda store: store.trace(trace_id)))

    def errors(self, namespace: str, *, include_silenced: bool) -> list[ErrorGroupRow]:
        """The error groups of ``namespace``, most frequent first."""
        result = self._call(
            namespace, lambda store: store.errors(namespace=namespace, limit=ERROR_LIMIT)
        )
        groups = [
            ErrorGroupRow(
                fingerprint=str(row["fingerprint"]),
                error_type=str(row["error_type"] or ""),
                message=str(row["sample_message"] or ""),
                location=str(row["location"] or ""),
                handled=bool(row["handled"]),
                count=int(row["count"]),
                first_us=_micros(row["first_seen"]),
                last_us=_micros(row["last_seen"]),
                sample_trace=row["sample_trace_id"],
                annotation=row["status"],
                level=row["level"],
                note=row["note"],
            )
            for row in _rows(result)
        ]
        if include_silenced:
            return groups
        return [group for group in groups if group.annotation != "silenced"]

    def annotate(
        self, namespace: str, fingerprint: str, *, status: str, level: str, note: str
    ) -> None:
        """Record an annotation of an error group through the Store."""
        self._call(
            namespace,
            lambda store: store.annotate(fingerprint, status=status, level=level, note=note),
        )
        for key in list(self._stores):  # stores of other namespaces must see it too
            if key != (namespace or None):
                self._call(key, lambda other: other.refresh())


ERROR_LIMIT = 500


def _one_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def _datetime(micros: int) -> datetime:
    return datetime.fromtimestamp(micros / 1e6, tz=UTC)
