"""``running_spans`` computed once per partition's files and remembered across processes.

The ``running_spans`` view (``span_tree/queries/running_spans.sql``) finds spans whose
only versions are ``started`` snapshots: it has to look up the finished versions of
every snapshot's span, a scan of the span ids of the snapshots' partitions. Its answer
for a partition depends only on that partition's files, which never change once
written (compaction replaces them by new names). So a Store evaluates the view once per
partition whose set of file names it has not seen, keeps the answer (the running spans'
keys) in the user's cache directory, and then reads the rows of just those spans: a
query over ``spans`` costs a scan of the finished rows and nothing more.

The same evaluation remembers which of the partition's files hold a ``started`` row:
the others are *settled* (``settled_span_versions``), and ``spans`` reads them with no
status filter, so a count reads no column of them.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import duckdb

from span_tree.analytics._source import cache_dir, read_spans_sql, sql_string, started_files_sql

_KEY_COLUMNS = ("namespace", "date", "trace_id", "span_id")
Key = tuple[str, str, str, str]


def files_digest(names: Sequence[str]) -> str:
    """A digest of a partition's file names (their set)."""
    return hashlib.sha1("\n".join(sorted(names)).encode()).hexdigest()


class RunningCache:
    """The remembered running spans of one store's partitions, by set of files."""

    def __init__(self, store_url: str, path: str | None = None) -> None:
        digest = hashlib.sha1(store_url.encode()).hexdigest()[:20]
        self.path = path or os.path.join(cache_dir(), "running", f"{digest}.json")
        self._lock = threading.Lock()
        self._entries: dict[str, dict[str, Any]] = {}
        try:
            with open(self.path, encoding="utf-8") as handle:
                loaded = json.load(handle)
            if isinstance(loaded, dict):
                self._entries = loaded
        except (OSError, ValueError):
            pass

    def get(self, partition: tuple[str, str], digest: str) -> list[Key] | None:
        """The running spans' keys of ``partition`` with files ``digest``, if known."""
        known = self.get_all(partition, digest)
        return None if known is None else known[0]

    def get_all(self, partition: tuple[str, str], digest: str) -> tuple[list[Key], set[str]] | None:
        """The running spans' keys of ``partition`` with files ``digest`` and the names of
        its files that hold a ``started`` row, if known."""
        entry = self._entries.get(f"{partition[0]}/{partition[1]}")
        if not isinstance(entry, dict) or entry.get("files") != digest:
            return None
        try:
            keys = [(str(a), str(b), str(c), str(d)) for a, b, c, d in entry["keys"]]
            started = {str(name) for name in entry["started"]}
        except (KeyError, TypeError, ValueError):
            return None  # also an entry of an older version, without "started"
        return keys, started

    def put(self, found: Mapping[tuple[str, str], tuple[str, list[Key], set[str]]]) -> None:
        """Remember ``partition -> (digest, keys, names of files with a started row)`` and
        save (atomically; best effort)."""
        if not found:
            return
        with self._lock:
            for (namespace, date), (digest, keys, started) in found.items():
                self._entries[f"{namespace}/{date}"] = {
                    "files": digest,
                    "keys": keys,
                    "started": sorted(started),
                }
            try:
                os.makedirs(os.path.dirname(self.path), exist_ok=True)
                temporary = f"{self.path}.{os.getpid()}.{threading.get_ident()}.tmp"
                with open(temporary, "w", encoding="utf-8") as handle:
                    json.dump(self._entries, handle)
                os.replace(temporary, self.path)
            except OSError:
                pass  # a read-only cache: computed again by the next process


def compute(
    con: duckdb.DuckDBPyConnection,
    partitions: Sequence[tuple[str, str]],
) -> dict[tuple[str, str], list[Key]]:
    """Evaluate ``running_spans`` (the live view) over ``partitions``; keys per partition.

    The caller has pointed ``idempotent_span_versions`` at exactly those partitions'
    files, so the view reads nothing else.
    """
    found: dict[tuple[str, str], list[Key]] = {partition: [] for partition in partitions}
    rows = con.execute(
        "SELECT namespace, date, trace_id, span_id FROM running_spans"
        " ORDER BY namespace, date, trace_id, span_id"
    ).fetchall()
    for namespace, date, trace_id, span_id in rows:
        found.setdefault((namespace, date), []).append((namespace, date, trace_id, span_id))
    return found


def started_files(
    con: duckdb.DuckDBPyConnection, files: Sequence[str], by_name: set[str]
) -> set[str]:
    """The names (last path part) of those of ``files`` that hold a ``started`` row.

    Reads only the status column, and skips row groups whose statistics exclude it.
    """
    rows = con.execute(started_files_sql(files, by_name)).fetchall()
    return {str(path).rpartition("/")[2] for (path,) in rows}


def create_cached_view(con: duckdb.DuckDBPyConnection, keys: Sequence[Key]) -> None:
    """Replace ``running_spans`` by the rows of the known running spans' ``keys``.

    Reads only the partitions that hold one (a date and namespace filter DuckDB prunes
    by), and there only ``started`` rows; nothing at all when there are none.
    """
    if not keys:
        # The anchor alone: no store file to bind when a query reads `spans`.
        con.execute(f"CREATE OR REPLACE VIEW running_spans AS {read_spans_sql([])}")
        return
    import pyarrow as pa

    table = pa.table(
        {
            name: pa.array(column, pa.string())
            for name, column in zip(_KEY_COLUMNS, zip(*keys, strict=True), strict=True)
        }
    )
    con.register("_running_keys_arrow", table)
    try:
        con.execute(
            "CREATE OR REPLACE TABLE running_span_keys AS SELECT * FROM _running_keys_arrow"
        )
    finally:
        con.unregister("_running_keys_arrow")
    partitions = sorted({(key[0], key[1]) for key in keys})
    where = " OR ".join(
        f"(namespace = {sql_string(namespace)} AND date = {sql_string(date)})"
        for namespace, date in partitions
    )
    con.execute(
        "CREATE OR REPLACE VIEW running_spans AS SELECT versions.*"
        " FROM unsettled_span_versions AS versions"
        " SEMI JOIN running_span_keys USING (namespace, date, trace_id, span_id)"
        f" WHERE versions.status = 'started' AND ({where})"
        " QUALIFY row_number() OVER (PARTITION BY namespace, date, trace_id, span_id"
        " ORDER BY written_at DESC NULLS LAST) = 1"
    )
