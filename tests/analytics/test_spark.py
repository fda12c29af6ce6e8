"""The views on Spark (local mode) give the same rows as on DuckDB, over one real store.

One SparkSession for the whole test session (starting a JVM costs seconds), a small
store written by span_tree's own writer (see ``spark_store``).
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from spark_store import build_store

from span_tree.analytics import VIEW_NAMES, Store
from span_tree.analytics.spark import SparkViews, local_session, register_views

pytestmark = pytest.mark.slow

# Tiny data: compiling generated code for each stage costs more than interpreting it,
# and two shuffle partitions are plenty.
FAST_SMALL_QUERIES = {
    "spark.sql.codegen.wholeStage": "false",
    "spark.sql.shuffle.partitions": "2",
}


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """A local Spark session (2 cores) shared by every Spark test."""
    session = local_session(app_name="span-tree-tests", cores="2", config=FAST_SMALL_QUERIES)
    try:
        yield session
    finally:
        session.stop()


@pytest.fixture(scope="module")
def store_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The seeded comparison store (written once for the module)."""
    return build_store(tmp_path_factory.mktemp("spark-store"))


@pytest.fixture(scope="module")
def store_session(spark: Any) -> Any:
    """A session of its own (temporary views are per session; the JVM is shared)."""
    return spark.newSession()


@pytest.fixture(scope="module")
def registered(store_session: Any, store_root: Path) -> SparkViews:
    """The store's views registered in their session; ``spans`` cached, as every view
    reads it (the ``spans`` test itself computes it first)."""
    views = register_views(store_session, str(store_root))
    store_session.catalog.cacheTable("spans")
    return views


def normalise(value: Any) -> Any:
    """One Arrow value in a form both engines agree on (UTC times, sorted maps and lists,
    floats to 10 significant digits: interpolated percentiles may differ in the last bits)."""
    if isinstance(value, float):
        return "nan" if math.isnan(value) else float(f"{value:.10g}")
    if isinstance(value, Decimal):
        return normalise(float(value))
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, dict):
        return tuple((key, normalise(item)) for key, item in value.items())
    if isinstance(value, list):
        if value and all(isinstance(item, tuple) and len(item) == 2 for item in value):
            return tuple(sorted((key, normalise(item)) for key, item in value))  # a map
        # as a multiset: a list built by an aggregate (list(), collect_list) has no order
        return tuple(sorted((normalise(item) for item in value), key=repr))
    return value


def rows(table: Any) -> list[tuple[Any, ...]]:
    """The table's rows, normalised and sorted (views have no order)."""
    normalised = [tuple(normalise(v) for v in row.values()) for row in table.to_pylist()]
    return sorted(normalised, key=repr)


@pytest.mark.parametrize("view", VIEW_NAMES)
def test_view_has_the_same_rows_on_spark(
    view: str, store_session: Any, registered: SparkViews, store_root: Path
) -> None:
    """Every view: the same columns and the same rows on Spark as on DuckDB."""
    with Store(str(store_root)) as store:
        expected = store.arrow(f"select * from {view}")
    actual = store_session.sql(f"select * from {view}").toArrow()
    assert expected.column_names == actual.column_names
    assert expected.num_rows > 0
    assert rows(expected) == rows(actual)


def test_registration_reads_the_listed_files(registered: SparkViews, store_root: Path) -> None:
    """Spark reads exactly the valid span files the DuckDB store lists."""
    with Store(str(store_root)) as store:
        assert sorted(store.files) == sorted(registered.files)
    assert [] == registered.problems


def test_empty_store_registers_empty_views(spark: Any, tmp_path: Path) -> None:
    """A store with no span file yet: every view exists and has no rows."""
    (tmp_path / "spans").mkdir()
    session = spark.newSession()
    register_views(session, str(tmp_path))
    counts = ", ".join(f"(select count(*) from {view}) as {view}" for view in VIEW_NAMES)
    assert dict.fromkeys(VIEW_NAMES, 0) == session.sql(f"select {counts}").collect()[0].asDict()


# Each DuckDB expression that needs a rewrite (see _spark_sql), on inputs where plain
# transpilation would answer differently: DuckDB's answer must come out of Spark.
TRANSLATED_EXPRESSIONS = [
    "[10, 20, 30][-1]",  # negative index counts from the end
    "[10, 20, 30][greatest(x, 1) + 1]",  # computed 1-based index
    "[10, 20, 30][7]",  # out of range is NULL
    "regexp_replace('a /x/y b', '(^|\\s)(/\\w+)+', '\\1<path>', 'g')",  # group reference
    "regexp_replace('cost $5 x5', '\\d', '$', 'g')",  # a literal $ in the replacement
    "list_concat(NULL, [1, 2])",  # NULL list is empty
    "x / 0",  # ±inf, not NULL or an error
    "0 / 0",  # NaN
    "len(l)",  # list length, not string length
    "len(s)",  # string length
]


@pytest.fixture(scope="module")
def one_row(spark: Any) -> Iterator[tuple[Any, Any]]:
    """Table ``t`` (x = -3, l = [1, 2, 3], s = 'héllo') in DuckDB, and as a view in a
    Spark session of its own."""
    import duckdb

    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT -3 AS x, [1, 2, 3] AS l, 'héllo' AS s")
    session = spark.newSession()
    session.sql("SELECT -3 AS x, array(1, 2, 3) AS l, 'héllo' AS s").createOrReplaceTempView("t")
    yield con, session
    con.close()


@pytest.mark.parametrize("expression", TRANSLATED_EXPRESSIONS)
def test_translated_expression_matches_duckdb(one_row: tuple[Any, Any], expression: str) -> None:
    """A rewritten construct gives DuckDB's value on Spark."""
    from span_tree.analytics._spark_sql import to_spark_sql

    con, session = one_row
    query = f"SELECT {expression} AS v FROM t"
    expected = con.execute(query).fetchall()[0][0]
    relations = {"t": [("x", "int"), ("l", "array<int>"), ("s", "string")]}
    actual = session.sql(to_spark_sql(query, relations=relations)).collect()[0][0]
    assert normalise(expected) == normalise(actual)


def test_arg_max_skips_null_values_like_duckdb(spark: Any) -> None:
    """arg_max(a, v) ignores rows whose a is NULL, on both engines."""
    import duckdb

    from span_tree.analytics._spark_sql import to_spark_sql

    query = (
        "SELECT arg_max(a, v) AS m, arg_min(a, v) AS n"
        " FROM (VALUES (1, 1), (NULL, 2), (NULL, 0)) t(a, v)"
    )
    expected = duckdb.sql(query).fetchall()[0]
    actual = tuple(spark.sql(to_spark_sql(query, relations={})).collect()[0])
    assert (1, 1) == expected == actual


def test_cli_sql_engine_spark(spark: Any, store_root: Path) -> None:
    """`spantree sql --engine spark` answers like the DuckDB engine (in process: it runs
    in a new session of the running Spark; the subprocess test below starts none)."""
    from typer.testing import CliRunner

    from span_tree.cli import app

    query = "select count(*) as spans, count(distinct trace_id) as traces from spans"

    def run(engine: str) -> str:
        args = ["sql", "--engine", engine, "--store", str(store_root), "--format", "csv", query]
        result = CliRunner().invoke(app, args)
        assert 0 == result.exit_code, result.output
        return result.stdout

    assert run("duckdb") == run("spark")


def test_cli_spark_without_java_is_one_line(store_root: Path, tmp_path: Path) -> None:
    """No Java: one clear error line and exit 1, no JVM traceback."""
    env = {**os.environ, "JAVA_HOME": str(tmp_path), "PATH": os.path.dirname(sys.executable)}
    done = subprocess.run(
        [sys.executable, "-m", "span_tree.cli", "sql", "--engine", "spark",
         "--store", str(store_root), "select 1"],
        capture_output=True, text=True, timeout=120, env=env, check=False,
    )  # fmt: skip
    assert 1 == done.returncode
    lines = done.stderr.strip().splitlines()
    assert 1 == len(lines), done.stderr
    assert "needs Java 17 or newer" in lines[0]
