"""Analytics over a span-tree store: DuckDB views, polars access, annotations.

``Store`` is the one entry point::

    from span_tree.analytics import Store

    store = Store("~/.spantree")
    store.pl("select name, p99_us from span_stats order by p99_us desc limit 5")
    store.trace("2Ezj...")          # a trace's span records

Imports duckdb and pyarrow (polars when first needed), so ``import span_tree`` never
imports this package.
"""

from __future__ import annotations

from span_tree.analytics._errors import (
    AmbiguousTraceId,
    QueryError,
    StoreError,
    StoreNotFound,
    TraceNotFound,
)
from span_tree.analytics._filters import Filters, parse_time
from span_tree.analytics._store import Store, ViewInfo
from span_tree.analytics._views import VIEW_NAMES

__all__ = [
    "VIEW_NAMES",
    "AmbiguousTraceId",
    "Filters",
    "QueryError",
    "Store",
    "StoreError",
    "StoreNotFound",
    "TraceNotFound",
    "ViewInfo",
    "parse_time",
]
