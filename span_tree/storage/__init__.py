"""The Parquet store: location, layout, atomic writes, file validation and maintenance.

Layout: ``<store>/spans/namespace=<ns>/date=<YYYY-MM-DD>/<ksuid>.parquet``, plain
hive-partitioned Parquet that pyarrow, polars, DuckDB, Spark or Athena read unchanged.
Imports pyarrow and fsspec, so ``import span_tree`` never imports this package.
"""

from __future__ import annotations

from span_tree.storage._files import (
    CORE_COLUMNS,
    FileProblem,
    SpanFiles,
    span_files,
)
from span_tree.storage._layout import Partition, list_partitions, partition_dir
from span_tree.storage._location import StoreLocation, open_store
from span_tree.storage._writer import write_spans

__all__ = [
    "CORE_COLUMNS",
    "FileProblem",
    "Partition",
    "SpanFiles",
    "StoreLocation",
    "list_partitions",
    "open_store",
    "partition_dir",
    "span_files",
    "write_spans",
]
