"""The Parquet store: location, layout, atomic writes, file validation and maintenance.

Layout: ``<store>/spans/namespace=<ns>/date=<YYYY-MM-DD>/<name>.parquet``, plain
hive-partitioned Parquet that pyarrow, polars, DuckDB, Spark or Athena read unchanged.
Imports pyarrow and fsspec, so ``import span_tree`` never imports this package.

File names (the kind of a file is visible from a listing alone):

- ``<batch-id>.b.parquet``: one batch. The batch id is a KSUID chosen once when the
  batch is formed (sink buffer, HTTP request, ingested lines: a content hash); every
  retry, spool replay or receiver write of it puts the same name (a batch spanning
  days has one file per partition, all with that name), so it never adds rows twice.
- ``<ksuid>.c.parquet``: a compacted file. Its footer (key-value metadata) names every
  file whose rows it holds (``span_tree.replaces``: its inputs and, transitively, their
  inputs) and whether any came from a legacy file (``span_tree.legacy``).
- any other ``*.parquet`` (``<ksuid>.parquet`` before 0.0.5, foreign files): *legacy*,
  may hold duplicate rows (readers apply the full newest-version rule to them).

The supersession rule (``resolve_compacted``, applied by ``list_span_files``): in each
partition, compacted files are taken by the number of names they replace (most
first), then by name; one is *accepted* unless it or a name it replaces is already
covered by an accepted one. Readers read the accepted compacted files and every
ordinary file no accepted file covers. Compaction deletes covered files and losing
compacted files only in a later pass, after a grace period (see ``_compact``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from span_tree._lazy import lazy_attributes

if TYPE_CHECKING:
    from span_tree.storage._compact import CompactResult, compact, conform
    from span_tree.storage._files import CORE_COLUMNS, FileProblem, SpanFiles, span_files
    from span_tree.storage._ingest import IngestResult, ingest_lines, parse_span_line
    from span_tree.storage._layout import Partition, list_partitions, partition_dir
    from span_tree.storage._listing import list_span_files, resolve_compacted
    from span_tree.storage._location import StoreLocation, open_store
    from span_tree.storage._prune import PruneResult, parse_age, prune
    from span_tree.storage._writer import write_spans

# Each public name and its module, imported on first use: a command that only lists a
# store (every query) must not pay for pyarrow.compute and the compaction machinery.
__getattr__ = lazy_attributes(
    __name__,
    {
        "CompactResult": "span_tree.storage._compact",
        "compact": "span_tree.storage._compact",
        "conform": "span_tree.storage._compact",
        "CORE_COLUMNS": "span_tree.storage._files",
        "FileProblem": "span_tree.storage._files",
        "SpanFiles": "span_tree.storage._files",
        "span_files": "span_tree.storage._files",
        "IngestResult": "span_tree.storage._ingest",
        "ingest_lines": "span_tree.storage._ingest",
        "parse_span_line": "span_tree.storage._ingest",
        "Partition": "span_tree.storage._layout",
        "list_partitions": "span_tree.storage._layout",
        "partition_dir": "span_tree.storage._layout",
        "list_span_files": "span_tree.storage._listing",
        "resolve_compacted": "span_tree.storage._listing",
        "StoreLocation": "span_tree.storage._location",
        "open_store": "span_tree.storage._location",
        "PruneResult": "span_tree.storage._prune",
        "parse_age": "span_tree.storage._prune",
        "prune": "span_tree.storage._prune",
        "write_spans": "span_tree.storage._writer",
    },
)


__all__ = [
    "CORE_COLUMNS",
    "CompactResult",
    "FileProblem",
    "IngestResult",
    "Partition",
    "PruneResult",
    "SpanFiles",
    "StoreLocation",
    "compact",
    "conform",
    "ingest_lines",
    "list_partitions",
    "list_span_files",
    "open_store",
    "parse_age",
    "parse_span_line",
    "partition_dir",
    "prune",
    "resolve_compacted",
    "span_files",
    "write_spans",
]
