"""Translating the DuckDB views to Spark SQL (no Spark needed; see
tests/analytics/test_spark.py for the same rows on Spark)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("sqlglot")  # the spark extra; part of the test extra

from span_tree.analytics import VIEW_NAMES, Store
from span_tree.analytics._spark_sql import TranslationError, java_replacement, to_spark_sql
from span_tree.analytics._views import view_sql
from span_tree.analytics.spark import _listing_url, _spark_path


def _spark_types(duckdb_type: str) -> str:
    """Enough of a Spark type string for the translation: lists and maps are marked."""
    if duckdb_type.endswith("[]"):
        element = duckdb_type[:-2]
        return "array<" + ("struct<>" if element.startswith("STRUCT") else element.lower()) + ">"
    if duckdb_type.startswith("MAP("):
        return "map<string,string>"
    return duckdb_type.lower()


def test_every_view_translates(tmp_path: Path) -> None:
    """Each view file becomes one CREATE OR REPLACE TEMPORARY VIEW in Spark SQL."""
    (tmp_path / "spans").mkdir()
    with Store(str(tmp_path)) as store:
        relations = {
            info.name: [(name, _spark_types(kind)) for name, kind in info.columns]
            for info in store.views()
        }
        roots = ("idempotent_span_versions", "legacy_span_versions", "annotation_versions")
        for root in roots:
            described = store.sql(f"DESCRIBE {root}").fetchall()
            relations[root] = [(row[0], _spark_types(row[1])) for row in described]
    for name in VIEW_NAMES:
        translated = to_spark_sql(view_sql(name), relations=relations)
        assert f"\nCREATE OR REPLACE TEMPORARY VIEW {name} AS\n" in translated


def _select(sql: str, relations: dict[str, list[tuple[str, str]]] | None = None) -> str:
    return " ".join(to_spark_sql(sql, relations=relations or {}).split())


def test_materialized_cte_is_a_plain_cte() -> None:
    """AS MATERIALIZED (DuckDB only) is dropped: Spark has no such syntax."""
    translated = _select("WITH p AS MATERIALIZED (SELECT 1 AS x) SELECT x FROM p")
    assert "WITH p AS ( SELECT 1 AS x ) SELECT x FROM p" == translated


def test_list_subscripts_become_try_element_at() -> None:
    """1-based and negative subscripts keep DuckDB's meaning; map keys stay subscripts."""
    translated = _select("SELECT l[1], l[-1], l[i + 1], m['k'] FROM t")
    assert (
        "SELECT TRY_ELEMENT_AT(l, 1), TRY_ELEMENT_AT(l, -1), TRY_ELEMENT_AT(l, i + 1),"
        " m['k'] FROM t"
    ) == translated


def test_qualify_star_is_expanded() -> None:
    """SELECT * ... QUALIFY lists the relation's columns, so no helper column leaks."""
    translated = _select(
        "SELECT * FROM t QUALIFY row_number() OVER (PARTITION BY a ORDER BY b) = 1",
        {"t": [("a", "int"), ("b", "int")]},
    )
    assert (
        "SELECT a, b FROM ( SELECT a, b, ROW_NUMBER() OVER (PARTITION BY a ORDER BY b NULLS"
        " LAST) AS _w FROM t ) AS _t WHERE _w = 1"
    ) == translated


def test_qualify_star_of_unknown_relation_is_refused() -> None:
    """A star whose columns are unknown cannot be expanded: a clear error."""
    with pytest.raises(TranslationError, match="columns of 'cte' unknown"):
        to_spark_sql("SELECT * FROM cte QUALIFY row_number() OVER () = 1", relations={})


def test_semi_join_using_becomes_on() -> None:
    """USING on a semi join becomes an ON condition (Spark reorders USING columns)."""
    translated = _select("SELECT v.* FROM t AS v SEMI JOIN d USING (k)")
    assert "SELECT v.* FROM t AS v SEMI JOIN d ON v.k = d.k" == translated


def test_recursive_union_becomes_union_all() -> None:
    """Spark's recursive CTEs take UNION ALL only; a non-recursive UNION stays."""
    translated = _select(
        "WITH RECURSIVE c(a) AS (SELECT 1 UNION SELECT a + 1 FROM c WHERE a < 3)"
        " SELECT a FROM c UNION SELECT 0"
    )
    assert (
        "WITH RECURSIVE c(a) AS ( SELECT 1 UNION ALL SELECT a + 1 FROM c WHERE a < 3 )"
        " SELECT a FROM c UNION SELECT 0"
    ) == translated


def test_regexp_replace_without_g_is_refused() -> None:
    """Replacing only the first match has no Spark equivalent: refused, not changed."""
    with pytest.raises(TranslationError, match="first match"):
        to_spark_sql("SELECT regexp_replace(s, 'a', 'b') FROM t", relations={})


def test_list_slices_are_refused() -> None:
    """List slices are not translated (no view uses them): a clear error."""
    with pytest.raises(TranslationError, match="slices"):
        to_spark_sql("SELECT l[1:2] FROM t", relations={})


@pytest.mark.parametrize(
    ("re2", "java"),
    [("\\1<path>", "$1<path>"), ("$5", "\\$5"), ("a\\\\b", "a\\\\b"), ("<n>", "<n>")],
)
def test_java_replacement(re2: str, java: str) -> None:
    """RE2 group references become Java ones; a literal $ is escaped."""
    assert java == java_replacement(re2)


def test_len_of_a_list_column_is_size() -> None:
    """len() of an array column is SIZE (NULL stays NULL); of a string, LENGTH."""
    relations = {"t": [("l", "array<int>"), ("s", "string")]}
    translated = _select("SELECT len(l), len(s) FROM t", relations)
    assert "SELECT IF(l IS NULL, NULL, SIZE(l)), LENGTH(s) FROM t" == translated


@pytest.mark.parametrize(
    ("url", "listed", "spark_path"),
    [
        ("s3a://b/p", "s3://b/p/spans/x.parquet", "s3a://b/p/spans/x.parquet"),
        ("/data/store", "/data/store/spans/x.parquet", "/data/store/spans/x.parquet"),
        ("gs://b/p", "gs://b/p/spans/x.parquet", "gs://b/p/spans/x.parquet"),
    ],
)
def test_spark_paths_keep_the_given_scheme(url: str, listed: str, spark_path: str) -> None:
    """An s3a:// store is listed through s3:// (fsspec) and read back as s3a://."""
    listing_url, scheme = _listing_url(url)
    assert listing_url is not None and not listing_url.startswith("s3a")
    assert spark_path == _spark_path(listed, scheme)


def test_missing_pyspark_is_one_line() -> None:
    """Without pyspark: one error line naming the install command."""
    code = (
        "import sys; sys.modules['pyspark'] = None\n"
        "from span_tree.analytics.spark import SparkUnavailable, check_available\n"
        "try:\n    check_available()\nexcept SparkUnavailable as e:\n    print(e)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert "the Spark engine needs pyspark: pip install 'span-tree[spark]'\n" == done.stdout
