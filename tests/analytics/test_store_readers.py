"""Other engines read the store directly: pyarrow.dataset, polars and DuckDB."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow.dataset as ds
import pytest

from span_tree.storage import open_store, write_spans


@pytest.fixture
def store(tmp_path: Path, make_spans: Any) -> tuple[Path, list[tuple[str, str, int]]]:
    """A store with two namespaces over two dates; the expected (ns, date, rows)."""
    location = open_store(str(tmp_path))
    expected = []
    for namespace, date, count in (("shop", "2025-01-01", 2), ("shop", "2025-01-02", 3),
                                   ("ops", "2025-01-02", 1)):  # fmt: skip
        write_spans(
            location, [s._replace(date=date) for s in make_spans(count, namespace=namespace)]
        )
        expected.append((namespace, date, 2 * count))
    return tmp_path, sorted(expected)


def test_pyarrow_dataset_reads_store(store: tuple[Path, list[tuple[str, str, int]]]) -> None:
    """pyarrow.dataset with hive partitioning sees every partition and row."""
    root, expected = store
    table = ds.dataset(root / "spans", format="parquet", partitioning="hive").to_table()
    counts = table.group_by(["namespace", "date"]).aggregate([("span_id", "count")])
    assert expected == sorted(zip(*counts.to_pydict().values(), strict=True))


def test_polars_scan_parquet_reads_store(store: tuple[Path, list[tuple[str, str, int]]]) -> None:
    """polars.scan_parquet(hive_partitioning=True) over the store glob."""
    root, expected = store
    frame = (
        pl.scan_parquet(f"{root}/spans/**/*.parquet", hive_partitioning=True)
        .group_by("namespace", "date")
        .agg(pl.len())
        .collect()
    )
    assert expected == sorted(frame.iter_rows())


def test_duckdb_read_parquet_reads_store(store: tuple[Path, list[tuple[str, str, int]]]) -> None:
    """DuckDB read_parquet(..., hive_partitioning=true) over the store glob."""
    root, expected = store
    rows = duckdb.execute(
        "select namespace, date::varchar, count(*) from read_parquet(?, hive_partitioning=true)"
        " group by all order by all",
        [f"{root}/spans/**/*.parquet"],
    ).fetchall()
    assert expected == rows
