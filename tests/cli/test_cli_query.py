"""The query commands: golden outputs per format, and clear errors on bad input.

Regenerate the golden files with ``SPANTREE_UPDATE_GOLDEN=1 pytest tests/cli/test_cli_query.py``.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from support.analytics_store import TRACE_IDS, build_store
from support.cli import run

GOLDEN = Path(__file__).parent.parent / "data" / "golden"
UPDATE = os.environ.get("SPANTREE_UPDATE_GOLDEN") == "1"
STATS_QUERY = "select name, count, p50_us, p99_us, last_seen from span_stats order by name"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The fixture store's path (the tests only read it)."""
    return build_store(tmp_path_factory.mktemp("store"))


def check_golden(name: str, actual: str) -> None:
    """Compare ``actual`` with ``tests/data/golden/<name>`` (or rewrite it when updating)."""
    path = GOLDEN / name
    if UPDATE:
        path.write_text(actual, encoding="utf-8")
    assert path.read_text(encoding="utf-8") == actual


@pytest.mark.parametrize("fmt", ["table", "csv", "json", "jsonl"])
def test_sql_formats(store: str, fmt: str) -> None:
    """spantree sql prints the same rows in every text format."""
    code, out, err = run("sql", STATS_QUERY, "--store", store, "--format", fmt)
    assert (0, "") == (code, err)
    check_golden(f"sql_span_stats.{fmt}", out)


def test_sql_defaults_to_csv_when_piped(store: str) -> None:
    """Without --format, output that is not a terminal is csv."""
    code, out, _ = run("sql", STATS_QUERY, "--store", store)
    assert 0 == code
    check_golden("sql_span_stats.csv", out)


def test_sql_parquet_output(store: str, tmp_path: Path) -> None:
    """--format parquet --output FILE writes the result as a Parquet file."""
    target = tmp_path / "stats.parquet"
    code, _, _ = run("sql", STATS_QUERY, "--store", store, "-f", "parquet", "-o", str(target))
    assert 0 == code
    table = pq.read_table(target)
    assert ["name", "count", "p50_us", "p99_us", "last_seen"] == table.column_names
    assert ["background", "checkout", "db.query", "late", "ping", "report"] == table.column(
        "name"
    ).to_pylist()


def test_sql_views(store: str) -> None:
    """spantree sql --views lists every view with its columns."""
    code, out, _ = run("sql", "--views", "--store", store, "--format", "csv")
    assert 0 == code
    check_golden("sql_views.csv", out)


@pytest.mark.parametrize(
    ("command", "name"),
    [
        (["traces", "--limit", "5"], "traces.table"),
        (["traces", "--status", "failed", "--format", "json"], "traces_failed.json"),
        (["slow", "--format", "table"], "slow.table"),
        (["slow", "--format", "json"], "slow.json"),
        (["errors"], "errors.table"),
        (["errors", "--format", "json"], "errors.json"),
        (["health"], "health.table"),
        (["health", "--format", "json"], "health.json"),
        (["trace", TRACE_IDS["T4"]], "trace_t4.tree"),
    ],
)
def test_command_outputs(store: str, command: list[str], name: str) -> None:
    """Each query command's readable table and its json form."""
    code, out, err = run(*command, "--store", store)
    assert (0, "") == (code, err)
    check_golden(name, out)


def test_annotate_then_errors(tmp_path: Path) -> None:
    """annotate records the status; errors shows it."""
    store = build_store(tmp_path)
    code, out, _ = run("errors", "--fatal", "--format", "csv", "--store", store)
    fingerprint = next(csv.DictReader(io.StringIO(out)))["fingerprint"]
    code, out, _ = run(
        "annotate",
        fingerprint,
        "--status",
        "crash",
        "--level",
        "ALERT",
        "--note",
        "ORD-1",
        "--store",
        store,
    )
    assert (0, f"annotated {fingerprint}: crash ALERT (ORD-1)\n") == (code, out)
    code, out, _ = run("errors", "--status", "crash", "--format", "csv", "--store", store)
    assert [fingerprint] == [row["fingerprint"] for row in csv.DictReader(io.StringIO(out))]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["sql", "select * form spans"], 'syntax error at or near "spans"'),
        (["sql", "select * from nope"], "Table with name nope does not exist"),
        (["sql", "select nope from spans"], 'column "nope" not found'),
        (["sql"], "give a query"),
        (["trace", "0" * 27], "no trace with id"),
        (["trace", "3"], "matches"),
        (["traces", "--since", "yesterday-ish"], "cannot read time"),
        (["traces", "--tag", "novalue"], "KEY=VALUE"),
        (["sql", "select 1", "-f", "parquet"], "needs --output"),
        (["annotate", "abc", "--status", "broken"], "status must be one of"),
    ],
)
def test_bad_input_is_one_clear_error(store: str, args: list[str], message: str) -> None:
    """Bad input: exit code 1, 'error: ...' on stderr, no traceback."""
    code, out, err = run(*args, "--store", store)
    assert 1 == code
    assert err.startswith("error: ")
    assert message in err
    assert "Traceback" not in out + err


def test_syntax_error_shows_position(store: str) -> None:
    """With --verbose, a SQL syntax error shows the line and a caret under the position."""
    _, _, err = run("sql", "select * form spans", "--verbose", "--store", store)
    assert "LINE 1: select * form spans" in err
    assert "^" in err


def test_empty_store_is_an_error(tmp_path: Path) -> None:
    """Querying a store with no spans says so and exits 1; --views still works."""
    code, _, err = run("traces", "--store", str(tmp_path))
    assert 1 == code
    assert f"error: no spans in store {tmp_path} yet" in err
    code, out, _ = run("sql", "--views", "--store", str(tmp_path), "--format", "csv")
    assert 0 == code
    assert "spans," in out


def test_missing_store_is_an_error(tmp_path: Path) -> None:
    """A store path that does not exist is one clear message, exit 1."""
    code, _, err = run("health", "--store", str(tmp_path / "missing"))
    assert 1 == code
    assert f"error: no store at {tmp_path / 'missing'}" in err


def test_corrupt_file_warns(tmp_path: Path) -> None:
    """A corrupt file in the store gives a one-line warning; the query still runs."""
    store = build_store(tmp_path)
    partition = next((tmp_path / "spans").glob("namespace=shop/date=*"))
    (partition / "broken.parquet").write_bytes(b"garbage")
    code, out, err = run("sql", "select count(*) as n from traces", "--store", store)
    assert (0, "n\n11\n") == (code, out)
    assert err.startswith("warning: skipped 1 unreadable file(s):")
    assert 1 == len(err.splitlines())
