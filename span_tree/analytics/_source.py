"""The store's files as DuckDB sees them: listing, the root views, DuckDB's settings.

Opening a store costs a directory listing (``span_tree.storage.list_span_files``),
limited to the partitions a time range needs; no file is opened in Python. Only the
root views are built here, because they need the file list:

- ``span_versions``: every span row of every readable file (the union of the two below);
- ``idempotent_span_versions``: rows of files written with batch identities, where the
  only rows sharing a span id are ``started`` snapshots and the finished version; the
  union of ``settled_span_versions`` (files known to hold no ``started`` row, which
  ``spans`` reads with no status filter) and ``unsettled_span_versions`` (the others);
- ``legacy_span_versions``: rows of partitions holding a file written before batch
  identities (a retried batch may be there twice);
- ``annotation_versions``: every annotation row.

Everything else is plain SQL in ``span_tree/queries``. Each root view reads its files
with one ``read_parquet`` that binds its columns from a tiny empty *anchor* file of
the current span schema (kept in the user's cache directory), so every view has the
same columns whatever file comes first, without reading every file's footer to unify
schemas. Files of an older schema (DuckDB names them when a column is missing) are
read by name in a second ``read_parquet``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import duckdb

from span_tree._record import SPAN_COLUMNS
from span_tree.analytics._errors import StoreNotFound

if TYPE_CHECKING:
    import pyarrow as pa

ANNOTATIONS_DIR = "annotations"

# The annotation columns and their DuckDB types (pyarrow is imported only to write one or
# to hand the schema to Spark: a query of a store with no annotation never loads it).
ANNOTATION_COLUMNS: tuple[tuple[str, str], ...] = (
    ("fingerprint", "VARCHAR"),
    ("status", "VARCHAR"),  # crash | silenced | open
    ("level", "VARCHAR"),  # OK | WARN | ALERT
    ("note", "VARCHAR"),
    ("author", "VARCHAR"),
    ("created_at", "TIMESTAMP WITH TIME ZONE"),  # µs, UTC
)


def annotation_schema() -> pa.Schema:
    """The Arrow schema of annotation files (``ANNOTATION_COLUMNS``)."""
    import pyarrow as pa

    text = pa.string()
    return pa.schema(
        [(name, text) for name, _ in ANNOTATION_COLUMNS[:-1]]
        + [("created_at", pa.timestamp("us", tz="UTC"))]
    )


def __getattr__(name: str) -> Any:
    """``ANNOTATION_SCHEMA``, built (with pyarrow) when first imported by name."""
    if name == "ANNOTATION_SCHEMA":
        return annotation_schema()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# DuckDB may use BOUND_SHARE of the machine's memory (at least BOUNDED_MEMORY_MB) before
# it spills to disk: a big join or aggregation spills under the cache directory instead
# of taking a shared machine, DuckDB's own default being 80 %. A quarter, not a fixed
# 1 GiB: at 1 GiB, span_stats over 100M spans (about 1 GB of quantile state, as much as
# the plain query takes) spilled and took 54 s instead of 6.5 s; error_groups there
# takes 4.8 GB and 20 s, or 1.2 GB and 33 s spilled. A query DuckDB cannot answer within
# the bound (an operator that cannot spill) runs once more with MEMORY_SHARE of the
# machine. SPANTREE_MEMORY_LIMIT or Store(memory_limit=) sets the limit instead, with no
# second try ("2GB": a DuckDB size).
BOUND_SHARE = 0.25
BOUNDED_MEMORY_MB = 1024
MEMORY_SHARE = 0.5


@dataclass
class Listing:
    """The span files the views read, as the last listing found them.

    Attributes:
        files: engine-readable paths (plain local paths or ``protocol://`` URLs) of every
            listed span file not known to be bad.
        legacy: those of ``files`` that may hold duplicate rows (written before batch
            identities); their whole partitions get the full newest-version rule.
        by_name: those of ``files`` read by column name (an older schema).
        partitions: engine path of each file -> its ``(namespace, date)``.
        first_date: the earliest date listed (``None``: every date).
        settled: those of ``files`` known to hold no ``started`` row (see ``_running``).
    """

    files: list[str] = field(default_factory=list)
    legacy: set[str] = field(default_factory=set)
    by_name: set[str] = field(default_factory=set)
    partitions: dict[str, tuple[str, str]] = field(default_factory=dict)
    first_date: str | None = None
    settled: set[str] = field(default_factory=set)


def cache_dir() -> str:
    """span-tree's directory in the user's cache (``XDG_CACHE_HOME`` or ``~/.cache``)."""
    configured = os.environ.get("SPANTREE_CACHE_DIR")
    if configured:
        return os.path.expanduser(configured)
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "spantree")


def sql_string(text: str) -> str:
    """Quote ``text`` as a SQL string literal: the one place paths enter SQL text."""
    return "'" + text.replace("'", "''") + "'"


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
    if location.is_local and not os.path.isdir(location.root):
        raise StoreNotFound(
            f"no store at {location.root} (run `spantree demo --store {location.root}`"
            " to create one)"
        )
    return location


def configure(con: duckdb.DuckDBPyConnection, memory_limit: str | None) -> str | None:
    """DuckDB settings of a Store's connection: UTC, no progress bar, bounded memory.

    Big queries spill to ``<cache>/duckdb-tmp`` instead of taking the machine.

    Returns:
        The larger memory limit to run a query again with when it ran out of memory
        under the default one (``None``: the caller chose the limit, or none is larger).
    """
    con.execute("SET TimeZone = 'UTC'")
    # DuckDB's own progress bar would print into piped csv/json output.
    con.execute("SET enable_progress_bar = false")
    limit = memory_limit or os.environ.get("SPANTREE_MEMORY_LIMIT")
    larger = None
    machine = None if limit else _machine_memory_mb()
    if machine:
        share = max(256, int(machine * MEMORY_SHARE))
        bound = min(share, max(BOUNDED_MEMORY_MB, int(machine * BOUND_SHARE)))
        limit = f"{bound}MiB"
        larger = f"{share}MiB" if share > bound else None
    if limit:
        con.execute(f"SET memory_limit = {sql_string(limit)}")
    temp = os.path.join(cache_dir(), "duckdb-tmp")
    try:
        os.makedirs(temp, exist_ok=True)
    except OSError:
        return larger  # a read-only home: DuckDB's default (no spilling for :memory:) stays
    con.execute(f"SET temp_directory = {sql_string(temp)}")
    return larger


def _machine_memory_mb() -> int | None:
    """The machine's memory in MiB, if known."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    except (ValueError, OSError, AttributeError):
        return None


def list_spans(
    location: Any, *, namespace: str | None, first_date: str | None, known: Any
) -> tuple[Listing, list[str]]:
    """List the span files (of ``namespace``, from ``first_date`` on): no file is opened.

    Files ``known`` (a ``Verdicts``) to be bad are left out and returned as problem
    lines; files known to have an older schema are marked to be read by name.

    Raises:
        OSError: the store cannot be listed.
    """
    from span_tree.storage import list_span_files
    from span_tree.storage._layout import parse_partition

    found = list_span_files(location, namespace=namespace, first_date=first_date)
    problems = [f"{problem.path}: {problem.reason}" for problem in found.problems]
    listing = Listing(first_date=first_date)
    for path, url, legacy in zip(found.files, found.urls, found.legacy, strict=True):
        partition = parse_partition(location, path.rpartition("/")[0])
        if partition is None:  # list_span_files lists partitions only
            continue
        verdict = known.get(url)
        if verdict is not None and verdict.bad:
            problems.append(f"{url}: {verdict.reason}")
            continue
        listing.files.append(url)
        listing.partitions[url] = (partition.namespace, partition.date)
        if legacy:
            listing.legacy.add(url)
        if verdict is not None:
            listing.by_name.add(url)
    return listing, problems


def list_annotations(location: Any) -> list[str]:
    """Engine-readable paths of the annotation files."""
    directory = location.join(ANNOTATIONS_DIR)
    if location.is_local:
        names = os.listdir(directory) if os.path.isdir(directory) else []
        paths = [f"{directory}/{name}" for name in names if name.endswith(".parquet")]
    elif location.fs.exists(directory):
        paths = location.fs.glob(f"{directory}/*.parquet")
    else:
        return []
    return sorted(
        location.url_of(path) for path in paths if not path.rsplit("/", 1)[-1].startswith(".")
    )


def anchor_file() -> str:
    """An empty Parquet file of the current span schema, for ``read_parquet`` to bind to.

    Under a ``namespace=/date=`` path like the store's files (hive partitioning needs
    every file to have the same keys); its date sorts before any real date, so it is
    pruned by every date filter.
    """
    from span_tree._record import SCHEMA_VERSION

    directory = os.path.join(
        cache_dir(), "anchor", f"v{SCHEMA_VERSION}", "namespace=_", "date=0000-00-00"
    )
    path = os.path.join(directory, "anchor.parquet")
    if not os.path.exists(path):
        import pyarrow.parquet as pq

        from span_tree.storage.schema import SPAN_SCHEMA

        os.makedirs(directory, exist_ok=True)
        temporary = f"{path}.{os.getpid()}.tmp"
        pq.write_table(SPAN_SCHEMA.empty_table(), temporary)
        os.replace(temporary, path)
    return path


_COLUMNS = ", ".join(f'"{name}"' for name in SPAN_COLUMNS)  # SPAN_SCHEMA's names


def read_spans_sql(files: Sequence[str], *, by_name: bool = False) -> str:
    """A ``SELECT`` of the span columns of ``files`` (hive partitions kept as text)."""
    listed = ", ".join(sql_string(path) for path in [anchor_file(), *files])
    options = "hive_partitioning = true, hive_types_autocast = false"
    if by_name:
        options += ", union_by_name = true"
    return f"SELECT {_COLUMNS} FROM read_parquet([{listed}], {options})"


def started_files_sql(files: Sequence[str], by_name: set[str]) -> str:
    """A ``SELECT`` of the paths of those of ``files`` that hold a ``started`` row."""
    parts = []
    for group, odd in (
        ([p for p in files if p not in by_name], False),
        ([p for p in files if p in by_name], True),
    ):
        if not group:
            continue
        listed = ", ".join(sql_string(path) for path in group)
        options = "filename = true, union_by_name = true" if odd else "filename = true"
        parts.append(
            f"SELECT DISTINCT filename FROM read_parquet([{listed}], {options})"
            " WHERE status = 'started'"
        )
    return " UNION ".join(parts) or "SELECT NULL::VARCHAR AS filename WHERE false"


def _group_sql(files: Sequence[str], by_name: set[str]) -> str:
    ordinary = [path for path in files if path not in by_name]
    odd = [path for path in files if path in by_name]
    parts = [read_spans_sql(ordinary)]
    if odd:
        parts.append(read_spans_sql(odd, by_name=True))
    return " UNION ALL ".join(parts)


def create_span_views(con: duckdb.DuckDBPyConnection, listing: Listing) -> None:
    """(Re)create the span root views over ``listing``'s files.

    Every file of a partition holding a legacy file is read as legacy: the versions of
    a span share its partition, so the full rule over those partitions is exact.
    """
    legacy_partitions = {listing.partitions[path] for path in listing.legacy}
    legacy = [path for path in listing.files if listing.partitions[path] in legacy_partitions]
    chosen = set(legacy)
    current = [path for path in listing.files if path not in chosen]
    settled = [path for path in current if path in listing.settled]
    unsettled = [path for path in current if path not in listing.settled]
    con.execute(
        "CREATE OR REPLACE VIEW settled_span_versions AS " + _group_sql(settled, listing.by_name)
    )
    con.execute(
        "CREATE OR REPLACE VIEW unsettled_span_versions AS "
        + _group_sql(unsettled, listing.by_name)
    )
    con.execute(
        "CREATE OR REPLACE VIEW idempotent_span_versions AS SELECT * FROM settled_span_versions"
        " UNION ALL SELECT * FROM unsettled_span_versions"
    )
    con.execute(
        "CREATE OR REPLACE VIEW legacy_span_versions AS " + _group_sql(legacy, listing.by_name)
    )
    con.execute(
        "CREATE OR REPLACE VIEW span_versions AS SELECT * FROM idempotent_span_versions"
        " UNION ALL SELECT * FROM legacy_span_versions"
    )


def create_annotation_view(con: duckdb.DuckDBPyConnection, files: Sequence[str]) -> None:
    """(Re)create ``annotation_versions`` over ``files`` (an empty table when none)."""
    if files:
        listed = ", ".join(sql_string(path) for path in files)
        con.execute(
            "CREATE OR REPLACE VIEW annotation_versions AS SELECT * FROM"
            f" read_parquet([{listed}], union_by_name = true)"
        )
        return
    columns = ", ".join(f"{name} {kind}" for name, kind in ANNOTATION_COLUMNS)
    con.execute(f"CREATE OR REPLACE TABLE _empty_annotations ({columns})")
    con.execute("CREATE OR REPLACE VIEW annotation_versions AS SELECT * FROM _empty_annotations")


def readable_annotations(
    con: duckdb.DuckDBPyConnection, files: Sequence[str]
) -> tuple[list[str], list[str]]:
    """The annotation files DuckDB can read, and a problem line for each other one."""
    readable, problems = [], []
    for path in files:
        try:
            con.execute(f"DESCRIBE SELECT * FROM read_parquet({sql_string(path)})").fetchall()
        except duckdb.Error as error:
            problems.append(f"{path}: {str(error).splitlines()[0]}")
            continue
        readable.append(path)
    return readable, problems
