"""``Store``: the one entry point to a span-tree store's SQL views.

The CLI, the TUI, the receiver's status API and notebooks all call these methods; no
SQL lives in those faces.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import duckdb

from span_tree._ids import is_trace_id
from span_tree._record import FinishedSpan
from span_tree.analytics import _annotations, _lookup, _reports
from span_tree.analytics._browse import SpanFilter
from span_tree.analytics._errors import QueryError, StoreError
from span_tree.analytics._filters import Filters, TimeLike
from span_tree.analytics._source import (
    SpanFiles,
    create_root_views,
    list_files,
    open_location,
)
from span_tree.analytics._views import (
    VIEW_NAMES,
    create_views,
    materialise_duplicates,
    view_description,
)

if TYPE_CHECKING:
    from datetime import datetime

    import polars
    import pyarrow as pa

_T = TypeVar("_T")


@dataclass(frozen=True)
class ViewInfo:
    """A view of the store: its name, what it answers, and its ``(column, type)`` pairs."""

    name: str
    description: str
    columns: list[tuple[str, str]]


class Store:
    """A span-tree store opened for analysis: DuckDB views over its Parquet files.

    The file list is read when the store is opened; call ``refresh()`` to see files
    written since. Helper methods return polars DataFrames whose columns are those of
    the view they read (see ``spantree sql --views``), except ``trace()`` which returns
    span records. Methods are safe to call from several threads (one lock); a relation
    returned by ``sql()`` belongs to the calling thread.

    Args:
        url: store path or fsspec URL (``s3://bucket/prefix``, ``memory://x``);
            ``None`` means the local store (``SPANTREE_STORE`` or ``~/.spantree``).
        storage_options: fsspec options for object stores (credentials, endpoint).
        namespace: read only this namespace's partitions.

    Raises:
        StoreNotFound: the URL is not understood, or a local store does not exist.
        StoreError: the store cannot be listed.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        storage_options: Mapping[str, Any] | None = None,
        namespace: str | None = None,
    ) -> None:
        self.namespace = namespace
        self.location = open_location(url, dict(storage_options or {}))
        self.url: str = self.location.url
        self._lock = threading.RLock()
        self._con = duckdb.connect(":memory:")
        self._con.execute("SET TimeZone = 'UTC'")
        # DuckDB's own progress bar would print into piped csv/json output.
        self._con.execute("SET enable_progress_bar = false")
        if not self.location.is_local:
            self._con.register_filesystem(self.location.fs)
        self._source = SpanFiles(self.location, [], [], [])
        self._views_ready = False
        self._duplicates_ready = False
        self.refresh()

    # -- lifecycle -------------------------------------------------------------------

    def refresh(self) -> None:
        """Re-list the store's files and rebuild the views (to see newly written spans).

        Raises:
            StoreError: the store cannot be listed or read.
        """
        with self._lock:
            try:
                try:
                    self._build_views()
                except duckdb.IOException:
                    # A listed file vanished before DuckDB read its schema (a concurrent
                    # compact or prune replaced it): the next listing no longer has it.
                    self._build_views()
            except duckdb.Error as error:
                raise StoreError(f"cannot read store {self.url}: {_one_message(error)}") from None

    def _build_views(self) -> None:
        try:
            source = list_files(self.location, namespace=self.namespace)
        except OSError as error:
            raise StoreError(f"cannot list store {self.url}: {error}") from None
        unchanged = source.files == self._source.files and self._views_ready
        if unchanged and source.annotation_files == self._source.annotation_files:
            # Files never change once written: the same lists mean the same views, and
            # rebinding them would re-read every file's footer (all of them, for
            # union_by_name) on each refresh.
            self._source = source
            return
        create_root_views(self._con, source)
        if not unchanged:
            create_views(self._con)
            self._duplicates_ready = False
            self._views_ready = True
        self._source = source

    def _retrying(self, run: Callable[[], _T]) -> _T:
        """``run()`` under the lock; once more over a fresh file list if a file vanished.

        ``spantree compact`` and ``prune`` delete files that a reader may have listed
        a moment before; the new listing has their replacement (or nothing) instead.
        """
        with self._lock:
            try:
                return run()
            except duckdb.IOException:
                if self.location.is_local and not self.location.fs.isdir(self.location.root):
                    raise  # the whole store is gone: say so, do not show it as empty
                self.refresh()
                return run()

    def _prepare(self) -> None:
        """Materialise the duplicated span ids once per file list (first query pays)."""
        if not self._duplicates_ready:
            materialise_duplicates(self._con)
            self._duplicates_ready = True

    def close(self) -> None:
        """Close the DuckDB connection."""
        with self._lock:
            self._con.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def files(self) -> list[str]:
        """Engine-readable paths of the valid span files read by the views."""
        return list(self._source.files)

    @property
    def problems(self) -> list[str]:
        """One line per store file skipped (corrupt, foreign...): path and reason."""
        return list(self._source.problems)

    @property
    def is_empty(self) -> bool:
        """True when the store holds no span file (yet)."""
        return not self._source.files

    # -- SQL ------------------------------------------------------------------------

    def sql(self, query: str, params: Sequence[Any] | Mapping[str, Any] | None = None) -> Any:
        """Run SQL over the views; returns a lazy ``duckdb.DuckDBPyRelation``.

        The relation reads the files when fetched: unlike ``arrow()`` and ``pl()``, it
        does not retry if a concurrent compaction removed a file in between.

        Raises:
            QueryError: syntax error, unknown view or column, wrong parameters.
        """

        def run() -> Any:
            self._prepare()
            return self._con.sql(query, params=params)

        try:
            return self._retrying(run)
        except duckdb.Error as error:
            raise QueryError(_one_message(error)) from None

    def arrow(
        self, query: str, params: Sequence[Any] | Mapping[str, Any] | None = None
    ) -> pa.Table:
        """Run SQL over the views and fetch the result as a pyarrow Table.

        Raises:
            QueryError: the query is invalid or fails while running.
        """

        def run() -> pa.Table:
            self._prepare()
            relation = self._con.sql(query, params=params)
            if relation is None:  # a statement without a result (SET, CREATE...)
                import pyarrow as pa

                return pa.table({})
            return relation.to_arrow_table()

        try:
            return self._retrying(run)
        except duckdb.Error as error:
            raise QueryError(_one_message(error)) from None

    def pl(
        self, query: str, params: Sequence[Any] | Mapping[str, Any] | None = None
    ) -> polars.DataFrame:
        """Run SQL over the views and return a polars DataFrame.

        Raises:
            QueryError: the query is invalid or fails while running.
        """
        import polars as pl

        frame = pl.from_arrow(self.arrow(query, params))
        assert isinstance(frame, pl.DataFrame)
        return frame

    def scan(self) -> polars.LazyFrame:
        """A polars LazyFrame straight over the files, with the rows of the ``spans`` view.

        Each span's newest version (finished beats started, then newest ``written_at``).
        """
        import polars as pl
        import pyarrow.dataset as ds

        from span_tree.schema import SPAN_SCHEMA

        if not self._source.files:
            empty = pl.from_arrow(SPAN_SCHEMA.empty_table())
            assert isinstance(empty, pl.DataFrame)
            return empty.lazy()
        paths = [_fs_path(self.location, url) for url in self._source.files]
        dataset = ds.dataset(
            paths, schema=SPAN_SCHEMA, format="parquet", filesystem=self.location.fs
        )
        frame = pl.scan_pyarrow_dataset(dataset)
        finished_first = (pl.col("status") != "started").alias("_finished")
        return (
            frame.with_columns(finished_first)
            .sort(["_finished", "written_at"], descending=True, nulls_last=True)
            .unique(subset=["trace_id", "span_id"], keep="first", maintain_order=True)
            .drop("_finished")
        )

    def views(self) -> list[ViewInfo]:
        """The store's views, in dependency order, with their columns.

        Raises:
            StoreError: the store's files cannot be read.
        """

        def run() -> list[ViewInfo]:
            infos = []
            for name in VIEW_NAMES:
                rows = self._con.execute(f"DESCRIBE {name}").fetchall()
                columns = [(str(row[0]), str(row[1])) for row in rows]
                infos.append(ViewInfo(name, view_description(name), columns))
            return infos

        try:
            return self._retrying(run)
        except duckdb.Error as error:
            raise StoreError(f"cannot read store {self.url}: {_one_message(error)}") from None

    def namespaces(self) -> list[str]:
        """The namespaces that hold spans, sorted."""
        from span_tree.analytics._source import file_namespace

        return sorted({ns for ns in map(file_namespace, self._source.files) if ns is not None})

    # -- typed helpers -------------------------------------------------------------

    def trace(self, trace_id: str) -> list[FinishedSpan]:
        """The spans of one trace (newest version of each), in start order.

        Args:
            trace_id: a KSUID, its 32-hex W3C form, or a unique prefix of the KSUID.

        Raises:
            TraceNotFound: no trace matches.
            AmbiguousTraceId: the prefix matches more than one trace.
            StoreError: the store's files cannot be read.
        """
        from span_tree.render import newest_versions
        from span_tree.schema import table_to_records

        def run() -> pa.Table:
            table = None
            if is_trace_id(trace_id.strip()):
                # A full KSUID: one query over the files of its day (the common case).
                full_id = trace_id.strip()
                files = _lookup.exact_trace_files(self._source.files, full_id)
                table = self._trace_table(files, full_id)
            if table is None or table.num_rows == 0:
                full_id, files = _lookup.resolve_trace_id(self._con, self._source.files, trace_id)
                table = self._trace_table(files, full_id)
            return table

        try:
            table = self._retrying(run)
        except duckdb.Error as error:
            raise StoreError(f"cannot read store {self.url}: {_one_message(error)}") from None
        records = newest_versions(table_to_records(table))
        return sorted(records, key=lambda span: (span.start_time, span.seq))

    def _trace_table(self, files: list[str], trace_id: str) -> pa.Table:
        if not files:
            from span_tree.schema import SPAN_SCHEMA

            return SPAN_SCHEMA.empty_table()
        relation = self._con.sql(_lookup.trace_table_sql(files), params=[trace_id])
        return relation.to_arrow_table()

    def resolve_trace_id(self, trace_id: str) -> str:
        """The full KSUID of a trace given by KSUID, 32-hex id or unique prefix.

        Raises:
            TraceNotFound: no trace matches.
            AmbiguousTraceId: the prefix matches more than one trace.
            StoreError: the store's files cannot be read.
        """
        try:
            return self._retrying(
                lambda: _lookup.resolve_trace_id(self._con, self._source.files, trace_id)[0]
            )
        except duckdb.Error as error:
            raise StoreError(f"cannot read store {self.url}: {_one_message(error)}") from None

    def traces(
        self,
        *,
        namespace: str | None = None,
        app: str | None = None,
        since: TimeLike = None,
        until: TimeLike = None,
        tags: Mapping[str, str] | None = None,
        status: str | None = None,
        name: str | None = None,
        limit: int | None = 100,
    ) -> polars.DataFrame:
        """Traces (rows of the ``traces`` view), newest first.

        Args:
            namespace, app, since, until, tags, status: see ``Filters``.
            name: only traces whose root span has this name.
            limit: at most this many rows (``None``: all).
        """
        return self._report(
            _reports.traces(Filters(namespace, app, since, until, tags, status, name)), limit
        )

    def slow(
        self,
        *,
        namespace: str | None = None,
        app: str | None = None,
        since: TimeLike = None,
        until: TimeLike = None,
        tags: Mapping[str, str] | None = None,
        status: str | None = None,
        name: str | None = None,
        threshold_us: int | None = None,
        limit: int | None = 20,
    ) -> polars.DataFrame:
        """Slow spans, slowest first (rows of the ``slow_spans`` view).

        Args:
            namespace, app, since, until, tags, status, name: see ``Filters``.
            threshold_us: instead of "over the name's p95", every finished span taking
                at least this many microseconds (same columns).
            limit: at most this many rows (``None``: all).
        """
        filters = Filters(namespace, app, since, until, tags, status, name)
        return self._report(_reports.slow(filters, threshold_us=threshold_us), limit)

    def errors(
        self,
        *,
        namespace: str | None = None,
        app: str | None = None,
        since: TimeLike = None,
        until: TimeLike = None,
        tags: Mapping[str, str] | None = None,
        status: str | None = None,
        handled: bool | None = None,
        name: str | None = None,
        limit: int | None = 100,
    ) -> polars.DataFrame:
        """Error groups (rows of the ``error_groups`` view), in most traces first.

        Args:
            namespace, app, since, until, tags: keep groups with an occurrence matching.
            status: only groups with this annotation status (``open``, ``crash``,
                ``silenced``).
            handled: only handled (``True``) or only fatal (``False``) errors.
            name: only errors raised inside spans of this name.
            limit: at most this many rows (``None``: all).
        """
        filters = Filters(namespace, app, since, until, tags, name=name)
        query = _reports.errors(filters, status=status, handled=handled)
        return self._report(query, limit)

    def dashboard(
        self, *, namespace: str | None = None, app: str | None = None, limit: int | None = None
    ) -> polars.DataFrame:
        """The dashboard: one row per kind of run (root span name), latest first."""
        return self._report(_reports.dashboard(Filters(namespace, app)), limit)

    def span_stats(
        self,
        *,
        namespace: str | None = None,
        app: str | None = None,
        name: str | None = None,
        limit: int | None = None,
    ) -> polars.DataFrame:
        """Per-name duration percentiles and error rates, most frequent first."""
        return self._report(_reports.span_stats(Filters(namespace, app, name=name)), limit)

    def health(self, *, namespace: str | None = None, app: str | None = None) -> polars.DataFrame:
        """OK / WARN / ALERT per (namespace, app), worst first (rows of ``health``)."""
        return self._report(_reports.health(Filters(namespace, app)), None)

    def annotate(
        self,
        fingerprint: str,
        *,
        status: str = "open",
        level: str = "WARN",
        note: str = "",
    ) -> None:
        """Record a decision about an error group; the newest annotation wins.

        Appends one small Parquet file under ``<store>/annotations/`` (works on object
        stores) and refreshes the views.

        Args:
            fingerprint: the error group's fingerprint (``error_groups.fingerprint``).
            status: ``crash``, ``silenced`` or ``open``.
            level: ``OK``, ``WARN`` or ``ALERT``.
            note: free text.

        Raises:
            ValueError: empty fingerprint, or an unknown status or level.
            StoreError: the annotation could not be written.
        """
        _annotations.check_annotation(fingerprint, status, level)
        try:
            _annotations.write_annotation(
                self.location, fingerprint=fingerprint, status=status, level=level, note=note
            )
        except OSError as error:
            raise StoreError(f"cannot write annotation to {self.url}: {error}") from None
        self.refresh()

    # -- span browsing (the TUI's dashboard; see _browse.py) --------------------------

    def span_names(self, selection: SpanFilter, *, limit: int | None = None) -> polars.DataFrame:
        """One row per span name under ``selection``: latest status, counts, p50/p99.

        Raises:
            QueryError: a bad ``selection.where`` expression, status or speed.
        """
        from span_tree.analytics import _browse

        return _browse.names(self, selection, limit=limit)

    def span_timeline(
        self, selection: SpanFilter, *, buckets: int, now: datetime
    ) -> polars.DataFrame:
        """Selected span volume and failures in ``buckets`` equal time slices up to ``now``.

        Raises:
            QueryError: a bad ``selection.where`` expression, status or speed.
        """
        from span_tree.analytics import _browse

        return _browse.timeline(self, selection, buckets=buckets, now=now)

    def spans_named(
        self, selection: SpanFilter, *, name: str, limit: int | None = 200
    ) -> polars.DataFrame:
        """The newest selected spans called ``name``, with their trace's root name.

        Raises:
            QueryError: a bad ``selection.where`` expression, status or speed.
        """
        from span_tree.analytics import _browse

        return _browse.spans_named(self, selection, name=name, limit=limit)

    def _report(self, query: _reports.Query, limit: int | None) -> polars.DataFrame:
        return self.pl(*_reports.limited(query, limit))


def _fs_path(location: Any, url: str) -> str:
    """The fs path (no protocol) of an engine URL of ``location``."""
    if location.is_local:
        return url
    return url.split("://", 1)[1]


def _one_message(error: duckdb.Error) -> str:
    """DuckDB's message without the class prefix noise, kept whole (it shows the position)."""
    return str(error).strip()
