"""What a `spantree sql --format csv` process imports (checked in a fresh process).

The CLI's start-up is most of a small query's time (issue 9: a cold `spantree sql`
against a plain `python -c 'import duckdb; ...'`), so the modules it loads are pinned
here, not its timing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

# Run the CLI as `spantree sql` does, then list what got imported.
PROBE = """
import json, sys
from span_tree.cli import main
try:
    main()
except SystemExit as stop:
    code = stop.code
print(json.dumps({"code": code, "modules": sorted(sys.modules)}), file=sys.stderr)
"""


def run_probe(probe: str, *args: str) -> tuple[str, str, dict[str, Any]]:
    """Run ``probe`` (a script that runs ``spantree ARGS`` and reports on stderr's last
    line) in a fresh interpreter: its stdout, stderr and report."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "SPANTREE_STORE": "none",
    }
    result = subprocess.run(
        [sys.executable, "-c", probe, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )
    report: dict[str, Any] = json.loads(result.stderr.strip().splitlines()[-1])
    return result.stdout, result.stderr, report


def imported_by_cli(*args: str) -> tuple[str, set[str]]:
    """Run ``spantree ARGS`` in a fresh interpreter: its stdout and the modules it loaded."""
    stdout, stderr, report = run_probe(PROBE, *args)
    assert 0 == report["code"], stderr
    return stdout, set(report["modules"])


def small_store(root: Path) -> None:
    """A store of one partition with one file of three spans."""
    from span_tree.storage.schema import SPAN_SCHEMA

    directory = root / "spans" / "namespace=default" / "date=2026-01-01"
    directory.mkdir(parents=True)
    rows = {name: [None] * 3 for name in SPAN_SCHEMA.names}
    rows.update(
        namespace=["default"] * 3,
        date=["2026-01-01"] * 3,
        trace_id=["2Qe0Vq1cGm0vwyVn7b9y0Bo8aAa"] * 3,
        span_id=["a" * 16, "b" * 16, "c" * 16],
        name=["root", "child", "child"],
        status=["succeeded"] * 3,
        duration_us=[10, 20, 30],
        schema_version=[1] * 3,
    )
    table = pa.Table.from_pydict(rows, schema=SPAN_SCHEMA)
    pq.write_table(table, directory / "2Qe0Vq1cGm0vwyVn7b9y0Bo8aAa.parquet")


def test_sql_csv_imports_only_what_it_uses(tmp_path: Path) -> None:
    """`spantree sql --format csv` on a local store loads duckdb, not pyarrow (the rows
    come straight from DuckDB), pydantic, rich, polars, textual, the storage writer, or
    fsspec (and with it asyncio): a local store is listed with the standard library."""
    small_store(tmp_path)
    out, modules = imported_by_cli(
        "sql", "--store", str(tmp_path), "--format", "csv", "select count(*) from spans"
    )
    assert "count_star()\n3\n" == out
    heavy = (
        "pydantic",
        "rich",
        "polars",
        "textual",
        "pyarrow",
        "span_tree.storage._writer",
        "span_tree.storage._compact",
        "span_tree.sinks",
        "fsspec",
        "asyncio",
    )
    assert [] == [name for name in heavy if name in modules]
    assert "duckdb" in modules  # the probe is sound: the query ran


def test_sql_table_still_loads_rich(tmp_path: Path) -> None:
    """The table format draws with rich (so the probe above can see rich when loaded)."""
    small_store(tmp_path)
    out, modules = imported_by_cli(
        "sql", "--store", str(tmp_path), "--format", "table", "select count(*) from spans"
    )
    assert "3" in out
    assert {"rich", "pyarrow"} <= modules


# Run `spantree sql` with duckdb.extract_statements counted (a parse with it starts
# DuckDB's default database, a second one besides the Store's).
PARSE_PROBE = """
import json, sys
import duckdb
calls = []
original = duckdb.extract_statements
duckdb.extract_statements = lambda *args: calls.append(args) or original(*args)
from span_tree.cli import main
try:
    main()
except SystemExit as stop:
    code = stop.code
print(json.dumps({"code": code, "parses": len(calls)}), file=sys.stderr)
"""


def parses_by_cli(*args: str) -> tuple[int, str, int]:
    """Run ``spantree ARGS``: its exit code, stdout and how often it parsed the query."""
    stdout, _, report = run_probe(PARSE_PROBE, *args)
    return report["code"], stdout, report["parses"]


def test_sql_of_one_statement_starts_no_second_duckdb(tmp_path: Path) -> None:
    """A query with no ';' inside runs without a parse by DuckDB's default database;
    one with a ';' inside a string literal is parsed, and is still one statement."""
    small_store(tmp_path)
    store = ["--store", str(tmp_path), "--format", "csv"]
    plain = parses_by_cli("sql", *store, "select count(*) as n from spans;")
    quoted = parses_by_cli("sql", *store, "select ';' as s")
    assert ((0, "n\n3\n", 0), (0, "s\n;\n", 1)) == (plain, quoted)
