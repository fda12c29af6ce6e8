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
import glob
import hashlib
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Collection, Mapping, Sequence
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

    def forget(self, present: Collection[Partition], listed: Callable[[Partition], bool]) -> None:
        """Drop the remembered rows of partitions the listing covers (``listed``) but did
        not find (``present``: pruned, or compacted away), and save the index."""
        with self._lock:
            gone = [
                key
                for key in self._entries
                if (partition := _partition(key)) is not None
                and listed(partition)
                and partition not in present
            ]
            if not gone:
                return
            for key in gone:
                name = self._entries.pop(key).get("rows")
                if name is not None:
                    with contextlib.suppress(OSError):
                        os.remove(os.path.join(self.directory, str(name)))
            self._save()

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
        view reads nothing else. One pass writes a file per partition. Returns the
        Parquet file of each partition's rows, or ``None`` when they cannot be written (a
        read-only cache directory): the caller keeps the live view then.

        Raises:
            duckdb.Error: reading the store's files failed.
        """
        try:
            os.makedirs(self.directory, exist_ok=True)
            staging = tempfile.mkdtemp(prefix=".staging-", dir=self.directory)
        except OSError:
            return None
        try:
            found = self._write(con, staging, digests)
        except (OSError, duckdb.IOException):
            return None
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        self._put({partition: (digests[partition], found[partition]) for partition in found})
        self._remove_other_versions()
        return found

    def _remove_other_versions(self) -> None:
        """Remove this store's rows of this view remembered by other versions of it (its
        SQL or the span schema changed: never read again)."""
        parent, own = os.path.split(self.directory)
        with contextlib.suppress(OSError):
            for name in os.listdir(parent):
                version = name.removeprefix(f"{self.view}-")
                if name != own and version != name and _is_version(version):
                    shutil.rmtree(os.path.join(parent, name), ignore_errors=True)

    def _write(
        self, con: duckdb.DuckDBPyConnection, staging: str, digests: Mapping[Partition, str]
    ) -> dict[Partition, str | None]:
        """One Parquet file per partition of the view's rows (``None``: it has none)."""
        if not os.path.exists(self.empty_path):  # the view's columns, no row (see point)
            unique = f"{self.empty_path}.{os.getpid()}.{threading.get_ident()}.tmp"
            empty = f"SELECT * FROM {self.view} LIMIT 0"
            con.execute(f"COPY ({empty}) TO {sql_string(unique)} (FORMAT parquet)")
            os.replace(unique, self.empty_path)
        con.execute(
            f"COPY (SELECT * FROM {self.view}) TO {sql_string(staging)}"
            " (FORMAT parquet, PARTITION_BY (namespace, date), WRITE_PARTITION_COLUMNS true)"
        )
        found: dict[Partition, str | None] = dict.fromkeys(digests)
        written = glob.glob(os.path.join(glob.escape(staging), "*", "*", "*.parquet"))
        if not written:
            return found
        listed = ", ".join(sql_string(path) for path in written)
        partitions = con.execute(
            "SELECT namespace, date, list(DISTINCT filename ORDER BY filename)"
            f" FROM read_parquet([{listed}], filename = true, hive_partitioning = false)"
            " GROUP BY ALL"
        ).fetchall()
        for namespace, date, files in partitions:
            partition = (namespace, date)
            digest = digests.get(partition)
            if digest is None:  # not asked for (cannot happen: the roots read only those)
                continue
            name = hashlib.sha1(f"{partition}\n{digest}".encode()).hexdigest() + ".parquet"
            path = os.path.join(self.directory, name)
            if len(files) == 1:
                os.replace(files[0], path)
            else:  # DuckDB split the partition: one file of its parts
                unique = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
                parts = ", ".join(sql_string(file) for file in files)
                con.execute(
                    f"COPY (SELECT * FROM read_parquet([{parts}])) TO {sql_string(unique)}"
                    " (FORMAT parquet)"
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
            self._save()

    def _save(self) -> None:
        """Save the index (atomically; best effort). The caller holds the lock."""
        try:
            temporary = f"{self._index_path}.{os.getpid()}.{threading.get_ident()}.tmp"
            with open(temporary, "w", encoding="utf-8") as handle:
                json.dump(self._entries, handle)
            os.replace(temporary, self._index_path)
        except OSError:
            pass  # a read-only cache: computed again by the next process


def _partition(key: str) -> Partition | None:
    """The partition of an index key (``namespace/date``)."""
    namespace, slash, date = key.rpartition("/")
    return (namespace, date) if slash else None


def _is_version(text: str) -> bool:
    """Whether ``text`` is a view version (12 hex digits, as DerivedCache names them)."""
    return len(text) == 12 and all(char in "0123456789abcdef" for char in text)
