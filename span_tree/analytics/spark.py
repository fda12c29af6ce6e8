"""The store's views on Apache Spark, for stores too big for one process.

``register_views(spark, url)`` registers the same views as ``Store`` (``spans``,
``traces``, ``span_stats``, ``error_groups``...) as temporary views in a
``SparkSession``, so ``spark.sql("select * from error_groups")`` works on a cluster::

    from pyspark.sql import SparkSession
    from span_tree.analytics.spark import register_views

    spark = SparkSession.builder.getOrCreate()
    register_views(spark, "s3a://traces/prod", storage_options={...})
    spark.sql("select name, p99_us from span_stats order by p99_us desc").show()

The view definitions are not a second copy: each ``span_tree/queries/<view>.sql`` is
translated from DuckDB SQL to Spark SQL when registered (``_spark_sql``). The root views
are built here, as ``_source.create_span_views`` does for DuckDB, over exactly the files
of the store listing (compaction's superseded files left out), read with the span schema
(files of an older schema version read NULL for the columns they lack).

Needs the ``spark`` extra (``pip install 'span-tree[spark]'``: pyspark and sqlglot) and,
for a local session, Java 17 or newer. Object stores: the listing goes through fsspec
(``storage_options``), the reading through Spark's own filesystem (``s3a://`` needs
hadoop-aws and its credentials configured in the session, as for any Spark job).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from span_tree.analytics._errors import QueryError, StoreError
from span_tree.analytics._source import (
    ANNOTATION_SCHEMA,
    list_annotations,
    list_spans,
    open_location,
)
from span_tree.analytics._views import VIEW_NAMES, view_sql

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession

INSTALL_HINT = "pip install 'span-tree[spark]'"

# Schemes Spark reads S3 through; fsspec lists the same objects as s3://.
_S3_SCHEMES = ("s3a", "s3n")


class SparkUnavailable(StoreError):
    """pyspark, sqlglot or Java is missing; ``str()`` says what to install."""


@dataclass(frozen=True)
class SparkViews:
    """What ``register_views`` registered.

    Attributes:
        url: the store URL as given.
        files: the span files the views read, as Spark paths.
        problems: one line per store file skipped (corrupt, foreign...).
        views: the registered view names, in dependency order.
    """

    url: str
    files: list[str]
    problems: list[str]
    views: tuple[str, ...]


def register_views(
    spark: SparkSession,
    url: str | None = None,
    *,
    storage_options: Mapping[str, Any] | None = None,
    namespace: str | None = None,
) -> SparkViews:
    """Register the store's views as temporary views in ``spark``.

    Call again to see files written since (the file list is read once per call).

    Args:
        spark: the session to register the views in.
        url: store path or URL (``s3a://bucket/prefix``; ``None``: the local store).
        storage_options: fsspec options used to list an object store (credentials,
            endpoint); Spark reads the files with its own configuration.
        namespace: read only this namespace's partitions.

    Returns:
        The files read and the views registered.

    Raises:
        SparkUnavailable: sqlglot is not installed.
        StoreNotFound: the URL is not understood, or a local store does not exist.
        StoreError: the store cannot be listed, or a view does not translate.
    """
    from span_tree.analytics._spark_sql import TranslationError, to_spark_sql

    listing_url, spark_scheme = _listing_url(url)
    location = open_location(listing_url, dict(storage_options or {}))
    try:
        listing, problems = list_spans(location, namespace=namespace, first_date=None, known={})
        annotation_files = list_annotations(location)
    except OSError as error:
        raise StoreError(f"cannot list store {location.url}: {error}") from None
    # As Store's root views (_source.create_span_views): every file of a partition that
    # holds a legacy file gets the full newest-version rule; the others are idempotent.
    legacy_partitions = {listing.partitions[path] for path in listing.legacy}
    legacy = [path for path in listing.files if listing.partitions[path] in legacy_partitions]
    chosen = set(legacy)
    current = [path for path in listing.files if path not in chosen]
    relations: dict[str, list[tuple[str, str]]] = {}
    spans_schema = _span_schema()
    # Which files hold no `started` row is not known here: every idempotent file is read
    # as unsettled (with the status filter), settled_span_versions is empty, and
    # idempotent_span_versions is a root of its own (a union view of the two made the
    # plans of the views that inline spans several times exhaust the Java heap).
    roots: tuple[tuple[str, list[str]], ...] = (
        ("settled_span_versions", []),
        ("unsettled_span_versions", current),
        ("idempotent_span_versions", current),
        ("legacy_span_versions", legacy),
    )
    for name, paths in roots:
        _register_root(spark, name, [_spark_path(p, spark_scheme) for p in paths], spans_schema)
        relations[name] = _columns(spark.table(name))
    spark.sql(
        "CREATE OR REPLACE TEMPORARY VIEW span_versions AS SELECT * FROM"
        " idempotent_span_versions UNION ALL SELECT * FROM legacy_span_versions"
    )
    relations["span_versions"] = relations["idempotent_span_versions"]
    annotations = [_spark_path(path, spark_scheme) for path in annotation_files]
    _register_root(spark, "annotation_versions", annotations, ANNOTATION_SCHEMA)
    relations["annotation_versions"] = _columns(spark.table("annotation_versions"))
    for name in VIEW_NAMES:
        try:
            statement = to_spark_sql(view_sql(name), relations=relations)
        except TranslationError as error:
            raise StoreError(f"view {name} does not translate to Spark SQL: {error}") from None
        spark.sql(statement)
        relations[name] = _view_columns(spark, name)
    if "running_spans" in VIEW_NAMES:
        # Like Store: the spans still running are few and fixed for one file list, and
        # finding them looks across rows; Spark keeps them once (lazily, on first use).
        spark.catalog.cacheTable("running_spans")
    files = [_spark_path(path, spark_scheme) for path in listing.files]
    return SparkViews(
        url=url or location.url,
        files=files,
        problems=problems,
        views=VIEW_NAMES,
    )


def local_session(
    *, app_name: str = "span-tree", cores: str = "*", config: Mapping[str, str] | None = None
) -> SparkSession:
    """A local-mode ``SparkSession`` set up like the DuckDB store (UTC, no UI, quiet).

    Args:
        app_name: the Spark application name.
        cores: worker threads (``local[cores]``), ``*`` for one per core.
        config: more Spark settings (they win over these defaults).

    Raises:
        SparkUnavailable: pyspark or Java is missing, or the JVM does not start.
    """
    check_available()
    from pyspark.sql import SparkSession

    settings = {
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.session.timeZone": "UTC",
        # One machine: the default 200 shuffle partitions would spend more time
        # scheduling empty tasks than computing.
        "spark.sql.shuffle.partitions": str(max(4, 2 * (os.cpu_count() or 1))),
        **(config or {}),
    }
    builder = SparkSession.builder.master(f"local[{cores}]").appName(app_name)
    for key, value in settings.items():
        builder = builder.config(key, value)
    try:
        spark = builder.getOrCreate()
    except Exception as error:  # pyspark raises its own or py4j errors; one line out
        raise SparkUnavailable(
            f"cannot start a local Spark session: {_first_line(error)}"
        ) from None
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def check_available() -> None:
    """Raise ``SparkUnavailable`` (one line) unless pyspark, sqlglot and Java are there."""
    for module in ("pyspark", "sqlglot"):
        try:
            __import__(module)
        except ImportError:
            raise SparkUnavailable(f"the Spark engine needs {module}: {INSTALL_HINT}") from None
    java_home = os.environ.get("JAVA_HOME")
    java = os.path.join(java_home, "bin", "java") if java_home else shutil.which("java")
    if not java or not os.path.exists(java):
        where = f"JAVA_HOME={java_home} has no bin/java" if java_home else "no java on PATH"
        raise SparkUnavailable(f"the Spark engine needs Java 17 or newer ({where})")


def query(
    sql: str,
    url: str | None = None,
    *,
    storage_options: Mapping[str, Any] | None = None,
    namespace: str | None = None,
) -> pa.Table:
    """Run ``sql`` over the store's views in a local Spark session; return an Arrow table.

    For ``spantree sql --engine spark``. A process that already runs a Spark session
    gets a new session of it (its own temporary views), left running; otherwise a local
    session is started and stopped afterwards.

    Raises:
        SparkUnavailable: pyspark, sqlglot or Java is missing.
        QueryError: Spark rejected or failed the query.
        StoreError: the store cannot be listed.
    """
    check_available()
    from pyspark.sql import SparkSession

    running = SparkSession.getActiveSession()
    spark = running.newSession() if running is not None else local_session()
    try:
        register_views(spark, url, storage_options=storage_options, namespace=namespace)
        try:
            return spark.sql(sql).toArrow()
        except Exception as error:  # AnalysisException, ParseException, Py4JJavaError...
            raise QueryError(_first_line(error)) from None
    finally:
        if running is None:
            spark.stop()


def _listing_url(url: str | None) -> tuple[str | None, str | None]:
    """The URL fsspec lists the store at, and the scheme Spark reads it with."""
    if url is None or "://" not in url:
        return url, None
    scheme, rest = url.split("://", 1)
    if scheme.lower() in _S3_SCHEMES:
        return f"s3://{rest}", scheme
    return url, scheme


def _spark_path(path: str, scheme: str | None) -> str:
    """A listed file (engine path or ``s3://`` URL) as Spark reads it."""
    if scheme and "://" in path:
        return f"{scheme}://{path.split('://', 1)[1]}"
    return path


def _span_schema() -> Any:
    from span_tree.storage.schema import SPAN_SCHEMA

    return SPAN_SCHEMA


def _register_root(spark: SparkSession, name: str, files: list[str], schema: pa.Schema) -> None:
    """A root view over ``files`` read with ``schema`` (empty when there are no files):
    columns a file of an older schema lacks read as NULL."""
    from pyspark.sql.pandas.types import from_arrow_schema

    spark_schema = from_arrow_schema(schema)
    if files:
        frame = spark.read.schema(spark_schema).parquet(*files)
    else:
        frame = spark.createDataFrame([], spark_schema)
    frame.createOrReplaceTempView(name)


def _columns(frame: DataFrame) -> list[tuple[str, str]]:
    return [(field.name, field.dataType.simpleString()) for field in frame.schema.fields]


def _view_columns(spark: SparkSession, name: str) -> list[tuple[str, str]]:
    """A registered view's columns as the catalog keeps them: ``spark.table(name)`` would
    analyse the view's plan a second time (seconds for the recursive error walk)."""
    return [(column.name, column.dataType) for column in spark.catalog.listColumns(name)]


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
