"""The SQL views: loaded from ``span_tree/queries/<view>.sql`` in dependency order."""

from __future__ import annotations

import re
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
    "error_spans",
    "error_occurrences",
    "error_groups",
    "run_sequences",
    "run_candidates",
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


_WORD_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_COMMENT_RE = re.compile(r"--[^\n]*")  # no view's SQL has "--" inside a string


def views_named(text: str) -> set[str]:
    """The views ``text`` (a query) may read, with the views those read, recursively.

    A word match: it may name a view the query does not read (in a string, say), never
    miss one it does.
    """
    wanted = {word.lower() for word in _WORD_RE.findall(text)} & set(VIEW_NAMES)
    done: set[str] = set()
    while wanted - done:  # until nothing new: the views' own SQL, comments left out
        name = (wanted - done).pop()
        done.add(name)
        code = _COMMENT_RE.sub("", view_sql(name))
        wanted |= {word.lower() for word in _WORD_RE.findall(code)} & set(VIEW_NAMES)
    return wanted


def create_views(con: duckdb.DuckDBPyConnection, names: set[str] | None = None) -> set[str]:
    """Create the views ``names`` (default: all) on ``con``, in dependency order.

    Creating a view binds it (a few milliseconds each, some of them nested): a query
    that reads one view needs only it and what it reads. Returns the names created.
    """
    chosen = set(VIEW_NAMES) if names is None else names
    for name in VIEW_NAMES:
        if name in chosen:
            con.execute(view_sql(name))
    return chosen
