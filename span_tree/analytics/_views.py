"""The SQL views: loaded from ``span_tree/queries/<view>.sql`` in dependency order."""

from __future__ import annotations

from importlib import resources

import duckdb

# Declared order: each view reads only the root views and the views before it.
VIEW_NAMES: tuple[str, ...] = (
    "running_spans",
    "spans",
    "traces",
    "span_stats",
    "slow_spans",
    "annotations",
    "error_occurrences",
    "error_groups",
    "run_sequences",
    "dashboard",
    "health",
)

_cache: dict[str, str] = {}


def view_sql(name: str) -> str:
    """Return the ``CREATE OR REPLACE VIEW`` text of view ``name``."""
    if name not in _cache:
        _cache[name] = (
            resources.files("span_tree.queries").joinpath(f"{name}.sql").read_text(encoding="utf-8")
        )
    return _cache[name]


def view_description(name: str) -> str:
    """The view's leading ``--`` comment, joined into one paragraph."""
    lines = []
    for line in view_sql(name).splitlines():
        if not line.startswith("--"):
            break
        lines.append(line[2:].strip())
    return " ".join(lines)


def create_views(con: duckdb.DuckDBPyConnection) -> None:
    """Create every view on ``con`` (the root views must exist already)."""
    for name in VIEW_NAMES:
        con.execute(view_sql(name))
