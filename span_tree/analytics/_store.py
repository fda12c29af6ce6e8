"""``Store``: the one entry point to a span-tree store's SQL views.

The CLI, the TUI, the receiver's status API and notebooks all call these methods; no
SQL lives in those faces.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import duckdb

from span_tree._ids import is_trace_id
from span_tree._record import FinishedSpan, newest_versions
from span_tree.analytics import (
    _annotations,
    _browse,
    _derived,
    _lookup,
    _reports,
    _running,
    _verdicts,
)
from span_tree.analytics._errors import QueryError, StoreError, StoreNotFound, TraceNotFound
from span_tree.analytics._filters import Filters, Query, TimeLike, parse_time
from span_tree.analytics._source import (
    Listing,
    configure,
    create_annotation_view,
    create_span_views,
    list_annotations,
    list_spans,
    open_location,
    read_spans_sql,
    readable_annotations,
)
from span_tree.analytics._views import (
    VIEW_NAMES,
    create_views,
    view_description,
    view_sql,
    views_named,
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


# How many times one call re-lists or leaves out a bad file before it gives up.
_RECOVERIES = 8
# DuckDB errors that are the query's own fault: never a reason to look at the files.
_QUERY_ERRORS = (duckdb.ParserException, duckdb.BinderException, duckdb.CatalogException)


class Store:
    """A span-tree store opened for analysis: DuckDB views over its Parquet files.

    Opening costs nothing but resolving the URL; the files are listed when first
    needed, and only the partitions needed (a helper with ``since`` lists the days from
    then on; SQL lists everything). Call ``refresh()`` to see files written since.
    A corrupt or foreign file is found when DuckDB trips on it: it is then left out,
    remembered (in the user's cache directory, until the file changes) and reported
    once through ``problems`` and ``on_problem``, and the query is answered from the
    other files. Helper methods return polars DataFrames whose columns are those of
    the view they read (see ``spantree sql --views``), except ``trace()`` which returns
    span records. Methods are safe to call from several threads (one lock); a relation
    returned by ``sql()`` belongs to the calling thread.

    Args:
        url: store path or fsspec URL (``s3://bucket/prefix``, ``memory://x``);
            ``None`` means the local store (``SPANTREE_STORE`` or ``~/.spantree``).
        storage_options: fsspec options for object stores (credentials, endpoint).
        namespace: read only this namespace's partitions.
        memory_limit: DuckDB's memory limit (``"4GB"``); default ``SPANTREE_MEMORY_LIMIT``,
            else 1 GB, with one more try at half the machine's memory for a query that
            cannot be answered within it. Bigger queries spill to the cache directory.
        on_problem: called with the new problem lines (skipped files) when found.

    Raises:
        StoreNotFound: the URL is not understood, or a local store does not exist.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        storage_options: Mapping[str, Any] | None = None,
        namespace: str | None = None,
        memory_limit: str | None = None,
        on_problem: Callable[[list[str]], None] | None = None,
    ) -> None:
        self.namespace = namespace
        self.location = open_location(url, dict(storage_options or {}))
        self.url: str = self.location.url
        self.on_problem = on_problem
        self._lock = threading.RLock()
        self._con = duckdb.connect(":memory:")
        self._larger_memory_limit = configure(self._con, memory_limit)
        if not self.location.is_local:
            self._con.register_filesystem(self.location.fs)
        self._verdicts = _verdicts.Verdicts(self.location)
        self._running = _running.RunningCache(self.url)
        self._derived = {
            view: _derived.DerivedCache(self.url, view) for view in _derived.DERIVED_VIEWS
        }
        self._listing: Listing | None = None  # nothing listed yet
        self._annotation_files: list[str] = []
        self._problems: list[str] = []
        self._views_ready = False
        self._views: set[str] = set()  # the views created so far (see _need_views)
        self._running_ready = False
        self._derived_ready = False

    # -- lifecycle -------------------------------------------------------------------

    def refresh(self) -> None:
        """Re-list the store's files and rebuild the views (to see newly written spans).

        Raises:
            StoreError: the store cannot be listed or read.
        """
        with self._lock:
            first = self._listing.first_date if self._listing is not None else None
            try:
                self._build(first)
            except duckdb.Error as error:
                raise StoreError(f"cannot read store {self.url}: {_one_message(error)}") from None

    def _ensure(self, first_date: str | None) -> None:
        """List (again) when the listing does not cover the days from ``first_date`` on."""
        listed = self._listing
        if listed is not None and (
            listed.first_date is None
            or (first_date is not None and listed.first_date <= first_date)
        ):
            return
        self._build(first_date)

    def _build(self, first_date: str | None) -> None:
        if self.location.is_local and not os.path.isdir(self.location.root):
            # The whole store is gone: say so, do not show it as empty.
            raise StoreNotFound(f"no store at {self.location.root} (it was removed)")
        try:
            listing, problems = list_spans(
                self.location, namespace=self.namespace, first_date=first_date, known=self._verdicts
            )
            annotations = list_annotations(self.location)
        except Exception as error:  # OSError, or an object-store client's own errors
            raise StoreError(f"cannot read store {self.url}: {error}") from None
        before = self._listing
        if (
            self._views_ready
            and before is not None
            and before.files == listing.files
            and before.legacy == listing.legacy
            and annotations == self._annotation_files
        ):
            # Files never change once written: the same lists mean the same views.
            before.first_date = listing.first_date
            self._add_problems(problems)
            return
        if not self._views_ready:
            # Views are created over roots that read no store file: creating a view binds
            # it, and binding a read_parquet of many files costs a look at each of them.
            create_span_views(self._con, Listing())
            create_annotation_view(self._con, [])
            self._views_ready = True
        self._listing = listing
        listing.settled = self._known_settled(listing)  # (one creation of the roots, not two)
        create_span_views(self._con, listing)
        self._annotation_files = annotations
        try:
            create_annotation_view(self._con, annotations)
        except duckdb.Error:
            # One bad annotation file (a stray or truncated upload) must not make the
            # whole store unreadable: skip it as a problem, like a bad span file.
            self._annotation_files, bad = readable_annotations(self._con, annotations)
            problems += bad
            create_annotation_view(self._con, self._annotation_files)
        self._running_ready = False
        self._derived_ready = False
        self._add_problems(problems)

    def _add_problems(self, problems: list[str]) -> None:
        new = [line for line in problems if line not in self._problems]
        if not new:
            return
        self._problems += new
        if self.on_problem is not None:
            self.on_problem(new)

    def _need_views(self, query: str | None) -> None:
        """Create the views ``query`` reads (``None``: every view) that do not exist yet.

        The views are first created over roots that read no store file (binding a view
        over many files costs a look at each), then the roots are pointed at the files.
        """
        wanted = views_named(query) if query is not None else set(VIEW_NAMES)
        missing = wanted - self._views
        if not missing:
            return
        if not self._views_ready:
            create_span_views(self._con, Listing())
            create_annotation_view(self._con, [])
            self._views_ready = True
        listing = self._listing
        if listing is not None and listing.files:
            create_span_views(self._con, Listing())
        try:
            self._views |= create_views(self._con, missing | self._views)
            # That created the live running_spans again: point it at the known keys anew.
            self._running_ready = False
            self._derived_ready = False
        finally:
            if listing is not None and listing.files:
                create_span_views(self._con, listing)

    def _known_settled(self, listing: Listing) -> set[str]:
        """Those of ``listing``'s files the running-spans cache knows hold no started row."""
        legacy = {listing.partitions[url] for url in listing.legacy}
        urls: dict[tuple[str, str], list[str]] = {}
        for url in listing.files:
            partition = listing.partitions[url]
            if partition not in legacy:
                urls.setdefault(partition, []).append(url)
        settled: set[str] = set()
        for partition, chosen in urls.items():
            names = [url.rpartition("/")[2] for url in chosen]
            known = self._running.get_all(partition, _running.files_digest(names))
            if known is not None:
                settled |= {url for url in chosen if url.rpartition("/")[2] not in known[1]}
        return settled

    def _prepare_running(self) -> None:
        """Point ``running_spans`` at the known running spans (see ``_running``).

        Partitions whose files were seen before cost a cache look-up; the others are
        evaluated once with the live view, over their files only.
        """
        if self._running_ready or self._listing is None:
            return
        listing = self._listing
        legacy = {listing.partitions[url] for url in listing.legacy}
        names: dict[tuple[str, str], list[str]] = {}
        for url in listing.files:
            partition = listing.partitions[url]
            if partition not in legacy:
                names.setdefault(partition, []).append(url.rpartition("/")[2])
        keys: list[_running.Key] = []
        missing: dict[tuple[str, str], str] = {}
        for partition, files in names.items():
            digest = _running.files_digest(files)
            known = self._running.get_all(partition, digest)
            if known is None:
                missing[partition] = digest
            else:
                keys += known[0]
        if missing:
            chosen = [url for url in listing.files if listing.partitions[url] in missing]
            only = Listing(chosen, set(), listing.by_name, listing.partitions, listing.first_date)
            create_span_views(self._con, only)
            self._con.execute(view_sql("running_spans"))
            try:
                found = _running.compute(self._con, list(missing))
                holding = _running.started_files(self._con, chosen, listing.by_name)
            finally:
                create_span_views(self._con, listing)
            self._running.put(
                {
                    partition: (
                        missing[partition],
                        found[partition],
                        {
                            name
                            for url in chosen
                            if listing.partitions[url] == partition
                            and (name := url.rpartition("/")[2]) in holding
                        },
                    )
                    for partition in missing
                }
            )
            keys += [key for partition in missing for key in found[partition]]
        settled = self._known_settled(listing)
        if settled != listing.settled:
            listing.settled = settled
            create_span_views(self._con, listing)
        _running.create_cached_view(self._con, keys)
        self._running_ready = True

    def _prepare_derived(self) -> None:
        """Point each derived view in use at its remembered rows (see ``_derived``).

        Partitions whose files were seen before cost a look-up; the others are evaluated
        once with the live view, over their files only.
        """
        if self._derived_ready or self._listing is None:
            return
        listing = self._listing
        names: dict[tuple[str, str], list[str]] = {}
        for url in listing.files:
            names.setdefault(listing.partitions[url], []).append(url.rpartition("/")[2])
        digests = {partition: _running.files_digest(files) for partition, files in names.items()}
        namespace, first_date = self.namespace, listing.first_date

        def listed(partition: tuple[str, str]) -> bool:
            return (namespace is None or partition[0] == namespace) and (
                first_date is None or partition[1] >= first_date
            )

        for view, cache in self._derived.items():
            if view not in self._views:
                continue
            cache.forget(digests.keys(), listed)  # the rows of pruned partitions
            rows: list[str] = []
            missing: dict[tuple[str, str], str] = {}
            for partition, digest in digests.items():
                known, path = cache.get(partition, digest)
                if not known:
                    missing[partition] = digest
                elif path is not None:
                    rows.append(path)
            if missing:
                chosen = [url for url in listing.files if listing.partitions[url] in missing]
                legacy = listing.legacy & set(chosen)
                only = Listing(
                    chosen, legacy, listing.by_name, listing.partitions, listing.first_date
                )
                create_span_views(self._con, only)
                self._con.execute(view_sql(view))
                try:
                    found = cache.compute(self._con, missing)
                finally:
                    create_span_views(self._con, listing)
                if found is None:  # not remembered (read-only cache): the live view
                    continue
                rows += [path for path in found.values() if path is not None]
            cache.point(self._con, rows)
        self._derived_ready = True

    def _retrying(
        self, run: Callable[[], _T], *, first_date: str | None = None, query: str | None = ""
    ) -> _T:
        """``run()`` under the lock over a listing from ``first_date`` on, recovering once
        per bad file or vanished file.

        ``spantree compact`` and ``prune`` delete files that a reader may have listed a
        moment before: the new listing has their replacement (or nothing) instead. A file
        DuckDB cannot read is left out and remembered (see ``_recover``).
        """
        with self._lock:
            recoveries = 0
            while True:
                try:
                    self._need_views(query)
                    self._ensure(first_date)
                    if "running_spans" in self._views:
                        self._prepare_running()
                    self._prepare_derived()
                    return run()
                except duckdb.Error as error:
                    recoveries += 1
                    if recoveries > _RECOVERIES or not self._recover(error):
                        raise

    def _recover(self, error: duckdb.Error) -> bool:
        """Act on a failed read: True when something changed and a retry may succeed."""
        if isinstance(error, duckdb.OutOfMemoryException):
            larger, self._larger_memory_limit = self._larger_memory_limit, None
            if larger is None:
                return False
            # An operator that cannot spill needed more than the default bound: once more
            # with the machine's share (the bound stays raised for this Store).
            self._con.execute(f"SET memory_limit = '{larger}'")
            return True
        if isinstance(error, _QUERY_ERRORS) or self._listing is None:
            return False
        message = str(error)
        listing = self._listing
        if _verdicts.is_vanished(message):
            if self.location.is_local and not os.path.isdir(self.location.root):
                return False  # the whole store is gone: say so, do not show it as empty
            # Or a derived view's remembered rows, replaced by a Store that listed more.
            self._derived_ready = False
            self._build(listing.first_date)
            return True
        culprit = _verdicts.named_file(message, set(listing.files))
        if culprit is not None:
            if _verdicts.is_schema_mismatch(message) and culprit not in listing.by_name:
                # An older schema: read it by column name from now on.
                self._verdicts.remember(culprit, bad=False, reason="older schema")
                listing.by_name.add(culprit)
                create_span_views(self._con, listing)
                return True
            if isinstance(error, duckdb.IOException):
                return False  # a read that failed (network...) is not the file's fault
            self._leave_out([(culprit, _first_line(message))])
            return True
        if not _verdicts.looks_corrupt(message):
            return False
        found = _verdicts.find_bad_files(list(listing.files), read_all=self._read_all)
        if not found:
            return False
        self._leave_out(found)
        return True

    def _read_all(self, files: list[str]) -> None:
        """Decode every value of every column of ``files`` (raises on a bad one).

        A hash of each column: counting would be answered from page headers and
        statistics without decoding the values that may be damaged.
        """
        rows = read_spans_sql(files, by_name=True)
        self._con.execute(f"SELECT bit_xor(hash(COLUMNS(*))) FROM ({rows})").fetchall()

    def _leave_out(self, found: list[tuple[str, str]]) -> None:
        assert self._listing is not None
        listing = self._listing
        for url, reason in found:
            self._verdicts.remember(url, bad=True, reason=reason)
            if url in listing.partitions:
                listing.files.remove(url)
                listing.legacy.discard(url)
        create_span_views(self._con, listing)
        self._running_ready = False
        self._derived_ready = False
        self._add_problems([f"{url}: {reason}" for url, reason in found])

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
        """Engine-readable paths of the span files the views read (lists them if needed)."""
        with self._lock:
            self._ensure(None)
            assert self._listing is not None
            return list(self._listing.files)

    @property
    def problems(self) -> list[str]:
        """One line per store file skipped (corrupt, foreign...) so far: path and reason."""
        return list(self._problems)

    @property
    def is_empty(self) -> bool:
        """True when the store holds no span partition (a directory listing)."""
        if self._listing is not None and self._listing.first_date is None:
            return not self._listing.files
        return not self.namespaces()

    # -- SQL ------------------------------------------------------------------------

    def sql(self, query: str, params: Sequence[Any] | Mapping[str, Any] | None = None) -> Any:
        """Run SQL over the views; returns a lazy ``duckdb.DuckDBPyRelation``.

        The relation reads the files when fetched; its fetch methods (``fetchall``,
        ``pl``, ``arrow``...) run again over a fresh file list when a file vanished under
        them (a concurrent compaction) or a bad file turned up.

        Raises:
            QueryError: syntax error, unknown view or column, wrong parameters.
        """
        try:
            relation = self._retrying(lambda: self._con.sql(query, params=params), query=query)
        except duckdb.Error as error:
            raise QueryError(_one_message(error)) from None
        if relation is None:
            return None
        return _Relation(self, relation, query, params)

    def rows(
        self, query: str, params: Sequence[Any] | Mapping[str, Any] | None = None
    ) -> tuple[list[str], list[str], Iterator[tuple[Any, ...]]]:
        """Run SQL over the views: its column names, DuckDB type names and rows.

        DuckDB runs the query once and keeps the result; the rows are handed out a batch
        at a time (a big result is never a whole Python copy). No pyarrow: the CLI's text
        formats start faster this way.

        Raises:
            QueryError: the query is invalid or fails while running.
        """

        def run() -> tuple[list[str], list[str], Iterator[tuple[Any, ...]]]:
            relation = self._con.sql(query, params=params)
            if relation is None:  # a statement without a result (SET, CREATE...)
                return [], [], iter(())
            rows = relation.iter_rows(batch_size=2048)
            first = next(rows, None)  # runs the query: a bad or vanished file recovers here
            head = [] if first is None else [first]
            return list(relation.columns), [str(kind) for kind in relation.types], chain(head, rows)

        try:
            return self._retrying(run, query=query)
        except duckdb.Error as error:
            raise QueryError(_one_message(error)) from None

    def arrow(
        self, query: str, params: Sequence[Any] | Mapping[str, Any] | None = None
    ) -> pa.Table:
        """Run SQL over the views and fetch the result as a pyarrow Table.

        Raises:
            QueryError: the query is invalid or fails while running.
        """
        return self._arrow(query, params, first_date=None)

    def _arrow(
        self,
        query: str,
        params: Sequence[Any] | Mapping[str, Any] | None,
        *,
        first_date: str | None,
    ) -> pa.Table:
        """``arrow()`` over a listing of the days from ``first_date`` on (``None``: all)."""

        def run() -> pa.Table:
            relation = self._con.sql(query, params=params)
            if relation is None:  # a statement without a result (SET, CREATE...)
                import pyarrow as pa

                return pa.table({})
            return relation.to_arrow_table()

        try:
            return self._retrying(run, first_date=first_date, query=query)
        except duckdb.Error as error:
            raise QueryError(_one_message(error)) from None

    def pl(
        self, query: str, params: Sequence[Any] | Mapping[str, Any] | None = None
    ) -> polars.DataFrame:
        """Run SQL over the views and return a polars DataFrame.

        Raises:
            QueryError: the query is invalid or fails while running.
        """
        return self._pl(query, params, first_date=None)

    def _pl(
        self,
        query: str,
        params: Sequence[Any] | Mapping[str, Any] | None,
        *,
        first_date: str | None = None,
    ) -> polars.DataFrame:
        import polars as pl

        frame = pl.from_arrow(self._arrow(query, params, first_date=first_date))
        assert isinstance(frame, pl.DataFrame)
        return frame

    def scan(self) -> polars.LazyFrame:
        """A polars LazyFrame straight over the files, with the rows of the ``spans`` view.

        Each span's newest version (the rule of ``span_tree._record.version_rank``).
        """
        import polars as pl
        import pyarrow.dataset as ds

        from span_tree.storage.schema import SPAN_SCHEMA

        files = self.files
        if not files:
            empty = pl.from_arrow(SPAN_SCHEMA.empty_table())
            assert isinstance(empty, pl.DataFrame)
            return empty.lazy()
        paths = [_fs_path(self.location, url) for url in files]
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
            return self._retrying(run, query=None)
        except duckdb.Error as error:
            raise StoreError(f"cannot read store {self.url}: {_one_message(error)}") from None

    def namespaces(self) -> list[str]:
        """The namespaces that hold spans, sorted (a directory listing).

        Raises:
            StoreError: the store cannot be listed.
        """
        from span_tree.storage import list_partitions

        try:
            partitions = list_partitions(self.location, namespace=self.namespace)
        except Exception as error:  # OSError, or an object-store client's own errors
            raise StoreError(f"cannot read store {self.url}: {error}") from None
        return sorted({partition.namespace for partition in partitions})

    # -- typed helpers -------------------------------------------------------------

    def trace(self, trace_id: str) -> list[FinishedSpan]:
        """The spans of one trace (newest version of each), in start order, parents first.

        A KSUID names its day: only the partitions from that day on are listed, and
        only those its spans can reach are read (row-group statistics on the sorted
        ``trace_id`` skip the rest). A foreign id (a KSUID with timestamp 0, or its
        32-hex form) says nothing about its date: every day is searched the same way.

        Args:
            trace_id: a KSUID, its 32-hex W3C form, or a unique prefix of the KSUID.

        Raises:
            TraceNotFound: no trace matches.
            AmbiguousTraceId: the prefix matches more than one trace.
            StoreError: the store's files cannot be read.
        """
        from span_tree.storage.schema import table_to_records

        try:
            full_id = (
                self.resolve_trace_id(trace_id)
                if not is_trace_id(trace_id.strip())
                else trace_id.strip()
            )
            day = _lookup.id_day(full_id)
            table = self._retrying(
                lambda: _lookup.trace_table(self._con, full_id, day), first_date=day
            )
            if table.num_rows == 0 and day is not None:
                # An id whose time is not its trace's (made by another system): every day.
                table = self._retrying(lambda: _lookup.trace_table(self._con, full_id, None))
        except duckdb.Error as error:
            raise StoreError(f"cannot read store {self.url}: {_one_message(error)}") from None
        if table.num_rows == 0:
            raise TraceNotFound(trace_id.strip())
        from span_tree._display import causal_order

        # Start order, but never a span before the one that started it (clocks differ
        # between the processes of a distributed trace).
        return causal_order(newest_versions(table_to_records(table)))

    def _dates(self) -> list[str]:
        listing = self._listing
        return [] if listing is None else sorted({day for _, day in listing.partitions.values()})

    def resolve_trace_id(self, trace_id: str) -> str:
        """The full KSUID of a trace given by KSUID, 32-hex id or unique prefix.

        Raises:
            TraceNotFound: no trace matches.
            AmbiguousTraceId: the prefix matches more than one trace.
            StoreError: the store's files cannot be read.
        """
        try:
            return self._retrying(
                lambda: _lookup.resolve_trace_id(self._con, trace_id, self._dates())
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
        query = _reports.limited(
            _reports.traces(Filters(namespace, app, since, until, tags, status, name)), limit
        )
        # A trace starting at or after `since` has every span there: list those days only.
        return self._pl(*query, first_date=_day(since))

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

    # -- span browsing: every span name, not only roots (the TUI; see _browse.py) -----

    def span_names(self, filters: Filters, *, limit: int | None = None) -> polars.DataFrame:
        """One row per span name under ``filters``: latest status, counts, p50/p99.

        Raises:
            QueryError: a bad ``filters.where`` expression, status or speed.
        """
        return self._run_browse(_browse.names(filters, limit=limit), filters)

    def span_timeline(self, filters: Filters, *, buckets: int, now: datetime) -> polars.DataFrame:
        """Selected span volume and failures in ``buckets`` equal time slices up to ``now``.

        Columns: ``bucket, spans, errors`` with every bucket present, oldest first.

        Raises:
            QueryError: a bad ``filters.where`` expression, status or speed.
        """
        found = self._run_browse(_browse.time_range(filters), filters)
        window = _browse.timeline_window(filters, found, buckets=buckets, now=now)
        if window is None:
            return _browse.every_bucket(None, buckets)
        first, width_us = window
        query = _browse.timeline(filters, first=first, width_us=width_us)
        return _browse.every_bucket(self._run_browse(query, filters), buckets)

    def spans_named(
        self, filters: Filters, *, name: str, limit: int | None = 200
    ) -> polars.DataFrame:
        """The newest selected spans called ``name``, with their trace's root name.

        Raises:
            QueryError: a bad ``filters.where`` expression, status or speed.
        """
        return self._run_browse(_browse.spans_named(filters, name=name, limit=limit), filters)

    def _run_browse(self, query: Query, filters: Filters) -> polars.DataFrame:
        try:
            return self._pl(*query, first_date=_browse.first_date(filters))
        except QueryError as error:
            raise QueryError(f"filter failed: {error}") from None

    def _report(self, query: Query, limit: int | None) -> polars.DataFrame:
        return self.pl(*_reports.limited(query, limit))


class _Relation:
    """A ``DuckDBPyRelation`` whose fetches run again after a recoverable read failure.

    Everything else is the relation's own (attribute access is passed through).
    """

    _FETCHES = frozenset(
        {
            "fetchall", "fetchone", "fetchmany", "fetchdf", "fetchnumpy", "df", "pl",
            "arrow", "to_arrow_table", "fetch_arrow_table", "to_df", "record_batch",
            "fetch_record_batch", "fetch_arrow_reader", "show", "to_csv", "to_parquet",
            "write_csv", "write_parquet",
        }
    )  # fmt: skip

    def __init__(self, store: Store, relation: Any, query: str, params: Any) -> None:
        self._store = store
        self._relation = relation
        self._query = query
        self._params = params

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._relation, name)
        if name not in self._FETCHES or not callable(attribute):
            return attribute

        def fetch(*args: Any, **kwargs: Any) -> Any:
            try:
                return attribute(*args, **kwargs)
            except duckdb.Error as error:
                store = self._store
                with store._lock:
                    if isinstance(error, _QUERY_ERRORS) or not store._recover(error):
                        raise

            # Run again over the new file list (retrying further recoveries).
            def again() -> Any:
                self._relation = store._con.sql(self._query, params=self._params)
                return getattr(self._relation, name)(*args, **kwargs)

            return store._retrying(again, query=self._query)

        return fetch

    def __repr__(self) -> str:
        return repr(self._relation)


def _day(moment: TimeLike) -> str | None:
    """The UTC day (``YYYY-MM-DD``) of a time filter, or ``None``."""
    parsed = parse_time(moment)
    if parsed is None:
        return None
    from datetime import UTC

    return parsed.astimezone(UTC).strftime("%Y-%m-%d")


def _first_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0] if lines else text


def _fs_path(location: Any, url: str) -> str:
    """The fs path (no protocol) of an engine URL of ``location``."""
    if location.is_local:
        return url
    return url.split("://", 1)[1]


def _one_message(error: duckdb.Error) -> str:
    """DuckDB's message without the class prefix noise, kept whole (it shows the position)."""
    return str(error).strip()
