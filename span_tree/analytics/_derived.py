"""Small views computed once per partition's files and remembered across processes.

``error_spans`` (the few spans that failed or logged a caught error) and
``run_candidates`` (the spans that can be a trace's root) are a small share of
``spans``: the error views and the dashboard read them instead of a dozen columns of
every span. Their rows of a partition depend only on that partition's files, which never
change once written (compaction replaces them by new names). So a Store evaluates such
a view once per partition whose set of file names it has not seen, keeps the rows as one
Parquet file per partition in the user's cache directory, and then points the view at
those files. A remote store's derived rows stay on the local disk.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import duckdb

from span_tree._record import SCHEMA_VERSION
from span_tree.analytics._source import cache_dir, sql_string
from span_tree.analytics._views import view_sql

# The derived views, each read by the views declared after it (see _views.VIEW_NAMES).
DERIVED_VIEWS: tuple[str, ...] = ("error_spans", "run_candidates")
# Those read with an empty file first (see DerivedCache.point).
ANCHORED_VIEWS = frozenset({"run_candidates"})

Partition = tuple[str, str]


class DerivedCache:
    """The remembered rows of one derived view of one store, per partition's files.

    An index (JSON) maps each partition to the digest of its file names and the name of
    the Parquet file holding its rows (``None``: the partition has none).
    """

    def __init__(self, store_url: str, view: str, directory: str | None = None) -> None:
        digest = hashlib.sha1(store_url.encode()).hexdigest()[:20]
        # Rows remembered by another version of the view (its SQL, the newest-version
        # rule's, the span schema's) are never read.
        rule = "\n".join(view_sql(name) for name in (view, "spans", "running_spans"))
        version = hashlib.sha1(f"{SCHEMA_VERSION}\n{rule}".encode()).hexdigest()[:12]
        self.directory = directory or os.path.join(
            cache_dir(), "derived", digest, f"{view}-{version}"
        )
        self.view = view
        self._index_path = os.path.join(self.directory, "index.json")
        self.empty_path = os.path.join(self.directory, "empty.parquet")
        self._lock = threading.Lock()
        self._entries: dict[str, dict[str, Any]] = {}
        try:
            with open(self._index_path, encoding="utf-8") as handle:
                loaded = json.load(handle)
            if isinstance(loaded, dict):
                self._entries = loaded
        except (OSError, ValueError):
            pass

    def get(self, partition: Partition, digest: str) -> tuple[bool, str | None]:
        """``(known, path)``: whether ``partition`` with files ``digest`` is remembered,
        and the Parquet file of its rows (``None``: it has none)."""
        entry = self._entries.get(f"{partition[0]}/{partition[1]}")
        if not isinstance(entry, dict) or entry.get("files") != digest:
            return False, None
        name = entry.get("rows")
        if name is None:
            return True, None
        path = os.path.join(self.directory, str(name))
        if not os.path.exists(path):  # the cache was cleaned: compute it again
            return False, None
        return True, path

    def point(self, con: duckdb.DuckDBPyConnection, files: Sequence[str]) -> None:
        """Point the view at its remembered rows (``files``): a read of those, or of an
        empty file of its columns when there are none (no look at the store's files)."""
        empty = self.empty_path if os.path.exists(self.empty_path) else None
        if empty is None and not files:
            # Never computed into this directory (all rows remembered elsewhere, or the
            # cache was cleaned): an empty table of the live view's columns. LIMIT 0
            # reads no file.
            con.execute(view_sql(self.view))
            con.execute(
                f"CREATE OR REPLACE TABLE _empty_{self.view} AS SELECT * FROM {self.view} LIMIT 0"
            )
            con.execute(f"CREATE OR REPLACE VIEW {self.view} AS SELECT * FROM _empty_{self.view}")
            return
        listed = sorted(files)
        if empty is not None and (not files or self.view in ANCHORED_VIEWS):
            # The empty file first, as the span views read an empty anchor first: DuckDB
            # estimates a read of many files from the first one, so the view is estimated
            # as the span rows it stands for were, and joins keep the sides planned for
            # those (the dashboard's few running runs are the built side of their look-up
            # of spans; estimated from the cached rows, every span id was built: 1.1 GB
            # on A). The error views plan better with the real estimate (15 % less CPU).
            listed.insert(0, empty)
        paths = ", ".join(sql_string(path) for path in listed)
        con.execute(f"CREATE OR REPLACE VIEW {self.view} AS SELECT * FROM read_parquet([{paths}])")

    def compute(
        self,
        con: duckdb.DuckDBPyConnection,
        digests: Mapping[Partition, str],
    ) -> dict[Partition, str | None] | None:
        """Evaluate the live view over ``digests``' partitions and remember its rows.

        The caller has pointed the root views at exactly those partitions' files, so the
        view reads nothing else. Returns the Parquet file of each partition's rows, or
        ``None`` when they cannot be written (a read-only cache directory): the caller
        keeps the live view then.

        Raises:
            duckdb.Error: reading the store's files failed.
        """
        temporary = f"_derived_{self.view}"
        con.execute(f"CREATE OR REPLACE TEMP TABLE {temporary} AS SELECT * FROM {self.view}")
        try:
            found = self._write(con, temporary, digests)
        except (OSError, duckdb.IOException):
            return None
        finally:
            con.execute(f"DROP TABLE IF EXISTS {temporary}")
        self._put({partition: (digests[partition], found[partition]) for partition in found})
        return found

    def _write(
        self, con: duckdb.DuckDBPyConnection, table: str, digests: Mapping[Partition, str]
    ) -> dict[Partition, str | None]:
        """One Parquet file per partition of ``table``'s rows (``None``: it has none)."""
        present = set(con.execute(f"SELECT DISTINCT namespace, date FROM {table}").fetchall())
        found: dict[Partition, str | None] = {}
        os.makedirs(self.directory, exist_ok=True)
        if not os.path.exists(self.empty_path):  # the view's columns, no row (see point)
            unique = f"{self.empty_path}.{os.getpid()}.{threading.get_ident()}.tmp"
            con.execute(
                f"COPY (SELECT * FROM {table} LIMIT 0) TO {sql_string(unique)} (FORMAT parquet)"
            )
            os.replace(unique, self.empty_path)
        for partition, digest in digests.items():
            if partition not in present:
                found[partition] = None
                continue
            name = hashlib.sha1(f"{partition}\n{digest}".encode()).hexdigest() + ".parquet"
            path = os.path.join(self.directory, name)
            unique = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
            namespace, date = map(sql_string, partition)
            con.execute(
                f"COPY (SELECT * FROM {table} WHERE namespace = {namespace}"
                f" AND date = {date}) TO {sql_string(unique)} (FORMAT parquet)"
            )
            os.replace(unique, path)
            found[partition] = path
        return found

    def _put(self, found: Mapping[Partition, tuple[str, str | None]]) -> None:
        """Remember ``partition -> (digest, rows file)``, drop the files they replace and
        save the index (atomically; best effort)."""
        with self._lock:
            for (namespace, date), (digest, path) in found.items():
                key = f"{namespace}/{date}"
                before = self._entries.get(key)
                name = None if path is None else os.path.basename(path)
                if isinstance(before, dict) and before.get("rows") not in (None, name):
                    with contextlib.suppress(OSError):
                        os.remove(os.path.join(self.directory, str(before["rows"])))
                self._entries[key] = {"files": digest, "rows": name}
            try:
                temporary = f"{self._index_path}.{os.getpid()}.{threading.get_ident()}.tmp"
                with open(temporary, "w", encoding="utf-8") as handle:
                    json.dump(self._entries, handle)
                os.replace(temporary, self._index_path)
            except OSError:
                pass  # a read-only cache: computed again by the next process
