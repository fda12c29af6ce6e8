"""Find the store's Parquet files and build the root relations the SQL views read.

Only the two root views are built here, in Python, because they need the file list:
``span_versions`` (every span row of every valid file) and ``annotation_versions``
(every annotation row). Everything else is plain SQL in ``span_tree/queries``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pyarrow as pa

from span_tree.analytics._errors import StoreNotFound
from span_tree.schema import SPAN_SCHEMA

ANNOTATIONS_DIR = "annotations"

ANNOTATION_SCHEMA = pa.schema(
    [
        ("fingerprint", pa.string()),
        ("status", pa.string()),  # crash | silenced | open
        ("level", pa.string()),  # OK | WARN | ALERT
        ("note", pa.string()),
        ("author", pa.string()),
        ("created_at", pa.timestamp("us", tz="UTC")),
    ]
)

_DATE_RE = re.compile(r"/date=(\d{4}-\d{2}-\d{2})/")
_NAMESPACE_RE = re.compile(r"/namespace=([^/]+)/")


@dataclass
class SpanFiles:
    """The store's readable span files and what was wrong with the others.

    Attributes:
        location: the store location (``span_tree.storage.StoreLocation``).
        files: engine-readable paths (plain local paths or ``protocol://`` URLs).
        annotation_files: engine-readable paths of the annotation files.
        problems: one human line per skipped file (corrupt, foreign...).
    """

    location: Any
    files: list[str]
    annotation_files: list[str]
    problems: list[str] = field(default_factory=list)


def sql_string(text: str) -> str:
    """Quote ``text`` as a SQL string literal: the one place paths enter SQL text."""
    return "'" + text.replace("'", "''") + "'"


def file_date(path: str) -> str | None:
    """The ``date=`` partition of a span file path, or ``None``."""
    match = _DATE_RE.search(path)
    return match.group(1) if match else None


def file_namespace(path: str) -> str | None:
    """The ``namespace=`` partition of a span file path, or ``None``."""
    match = _NAMESPACE_RE.search(path)
    return match.group(1) if match else None


def open_location(url: str | None, storage_options: dict[str, Any] | None) -> Any:
    """Resolve ``url`` (``None``: the local store) to a ``StoreLocation``.

    Raises:
        StoreNotFound: the URL's protocol is unknown, or a local store directory is missing.
    """
    from span_tree.storage import open_store

    try:
        location = open_store(url, storage_options=storage_options)
    except ValueError as error:
        raise StoreNotFound(str(error)) from None
    if location.is_local and not location.fs.isdir(location.root):
        raise StoreNotFound(
            f"no store at {location.root} (run `spantree demo --store {location.root}`"
            " to create one)"
        )
    return location


def list_files(location: Any, *, namespace: str | None) -> SpanFiles:
    """List the valid span files (optionally of one namespace) and the annotation files."""
    from span_tree.storage import span_files

    found = span_files(location, namespace=namespace)
    problems = [f"{problem.path}: {problem.reason}" for problem in found.problems]
    fs = location.fs
    annotations_dir = location.join(ANNOTATIONS_DIR)
    annotation_files: list[str] = []
    if fs.exists(annotations_dir):
        annotation_files = sorted(
            location.url_of(path)
            for path in fs.glob(f"{annotations_dir}/*.parquet")
            if not path.rsplit("/", 1)[-1].startswith(".")
        )
    return SpanFiles(location, list(found.urls), annotation_files, problems)


def read_spans_sql(files: Sequence[str]) -> str:
    """The ``read_parquet`` call over span ``files`` (hive partitions kept as text)."""
    listed = ", ".join(sql_string(path) for path in files)
    return (
        f"read_parquet([{listed}], hive_partitioning = true, union_by_name = true,"
        " hive_types_autocast = false)"
    )


def create_root_views(con: duckdb.DuckDBPyConnection, source: SpanFiles) -> None:
    """(Re)create ``span_versions`` and ``annotation_versions`` over ``source``'s files.

    An empty store gets views over empty tables of the span schema, so every view built
    on them exists and returns zero rows. Empty tables are real (not registered Arrow
    tables) so cursors of the same connection see them too.
    """
    if source.files:
        con.execute(
            f"CREATE OR REPLACE VIEW span_versions AS SELECT * FROM {read_spans_sql(source.files)}"
        )
    else:
        _create_empty_table(con, "_empty_spans", SPAN_SCHEMA)
        con.execute("CREATE OR REPLACE VIEW span_versions AS SELECT * FROM _empty_spans")
    if source.annotation_files:
        try:
            _create_annotation_view(con, source.annotation_files)
        except duckdb.Error:
            # One bad annotation file (a stray or truncated upload) must not make the
            # whole store unreadable: skip it as a problem, like a bad span file.
            source.annotation_files = _readable_annotations(con, source)
            if source.annotation_files:
                _create_annotation_view(con, source.annotation_files)
    if not source.annotation_files:
        _create_empty_table(con, "_empty_annotations", ANNOTATION_SCHEMA)
        con.execute(
            "CREATE OR REPLACE VIEW annotation_versions AS SELECT * FROM _empty_annotations"
        )


def _create_annotation_view(con: duckdb.DuckDBPyConnection, files: Sequence[str]) -> None:
    listed = ", ".join(sql_string(path) for path in files)
    con.execute(
        "CREATE OR REPLACE VIEW annotation_versions AS SELECT * FROM"
        f" read_parquet([{listed}], union_by_name = true)"
    )


def _readable_annotations(con: duckdb.DuckDBPyConnection, source: SpanFiles) -> list[str]:
    """The annotation files DuckDB can read; the others are added to ``problems``."""
    readable = []
    for path in source.annotation_files:
        try:
            con.execute(f"DESCRIBE SELECT * FROM read_parquet({sql_string(path)})").fetchall()
        except duckdb.Error as error:
            source.problems.append(f"{path}: {str(error).splitlines()[0]}")
            continue
        readable.append(path)
    return readable


def _create_empty_table(con: duckdb.DuckDBPyConnection, name: str, schema: pa.Schema) -> None:
    con.register("_arrow_empty", schema.empty_table())
    try:
        con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM _arrow_empty")
    finally:
        con.unregister("_arrow_empty")
