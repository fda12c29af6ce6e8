"""The Parquet store: location, layout, atomic writes, file validation and maintenance.

Layout: ``<store>/spans/namespace=<ns>/date=<YYYY-MM-DD>/<ksuid>.parquet``, plain
hive-partitioned Parquet that pyarrow, polars, DuckDB, Spark or Athena read unchanged.
Imports pyarrow and fsspec, so ``import span_tree`` never imports this package.
"""

from __future__ import annotations

from span_tree.storage._compact import CompactResult, compact, conform
from span_tree.storage._files import (
    CORE_COLUMNS,
    FileProblem,
    SpanFiles,
    span_files,
)
from span_tree.storage._ingest import IngestResult, ingest_lines, parse_span_line
from span_tree.storage._layout import Partition, list_partitions, partition_dir
from span_tree.storage._location import StoreLocation, open_store
from span_tree.storage._prune import PruneResult, parse_age, prune
from span_tree.storage._spool import Spool
from span_tree.storage._writer import write_spans

__all__ = [
    "CORE_COLUMNS",
    "CompactResult",
    "FileProblem",
    "IngestResult",
    "Partition",
    "PruneResult",
    "SpanFiles",
    "Spool",
    "StoreLocation",
    "compact",
    "conform",
    "ingest_lines",
    "list_partitions",
    "open_store",
    "parse_age",
    "parse_span_line",
    "partition_dir",
    "prune",
    "span_files",
    "write_spans",
]
