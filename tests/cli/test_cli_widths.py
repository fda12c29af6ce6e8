"""The query commands read well at 80 and at 200 columns: one line per row, ids whole,
long text cut with an ellipsis, columns left out by priority (or one record per row for
ad-hoc SQL), and a last line saying how to get everything."""

from __future__ import annotations

import csv
import io

import pytest
from support.analytics_store import TRACE_IDS, build_store
from typer.testing import CliRunner

from span_tree.cli import app

HINT = "--format csv|json shows everything)"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The fixture store's path (the tests only read it)."""
    return build_store(tmp_path_factory.mktemp("store"))


def render(width: int, *args: str) -> str:
    """stdout of ``spantree ARGS --format table`` on a ``width``-column output."""
    runner = CliRunner(env={"NO_COLOR": "1", "FORCE_COLOR": None, "COLUMNS": str(width)})
    result = runner.invoke(app, list(args))
    assert (0, "") == (result.exit_code, result.stderr)
    return result.stdout


COMMANDS = {
    "traces": ["traces", "-f", "table"],
    "errors": ["errors", "-f", "table"],
    "slow": ["slow", "-f", "table"],
    "health": ["health", "-f", "table"],
    "sql": ["sql", "select name, count, p50_us, p99_us from span_stats", "-f", "table"],
    "sql *": ["sql", "select * from spans order by span_id limit 2", "-f", "table"],
    "views": ["sql", "--views", "-f", "table"],
    "trace": ["trace", TRACE_IDS["T4"]],
}


@pytest.mark.parametrize("width", [80, 200])
@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_line_fits(store: str, command: str, width: int) -> None:
    """No line of any command is wider than the terminal."""
    out = render(width, *COMMANDS[command], "--store", store)
    too_wide = [line for line in out.splitlines() if len(line.rstrip()) > width]
    assert [] == too_wide


def csv_rows(store: str, *args: str) -> list[dict[str, str]]:
    """The csv form of a command, as rows."""
    runner = CliRunner(env={"NO_COLOR": "1"})
    result = runner.invoke(app, [*args, "--format", "csv", "--store", store])
    return list(csv.DictReader(io.StringIO(result.stdout)))


@pytest.mark.parametrize("width", [80, 200])
def test_traces_one_line_per_row_ids_whole(store: str, width: int) -> None:
    """Each trace is one line holding its whole id."""
    out = render(width, "traces", "-f", "table", "--store", store)
    ids = [row["trace_id"] for row in csv_rows(store, "traces")]
    lines = out.splitlines()
    assert [1] * len(ids) == [sum(trace_id in line for line in lines) for trace_id in ids]


def test_traces_at_80_columns_leave_out_the_least_important(store: str) -> None:
    """At 80 columns the trace, name, status, duration and start stay; a line names the
    rest and the formats that show it."""
    lines = render(80, "traces", "-f", "table", "--store", store).splitlines()
    header = lines[1].split()
    assert ["start", "(UTC)", "trace", "name", "status", "duration"] == header
    assert "(not shown: error_count, span_count, app; " + HINT == lines[-1]


def test_traces_at_200_columns_show_every_column(store: str) -> None:
    """At 200 columns every column shows and no hint is printed."""
    lines = render(200, "traces", "-f", "table", "--store", store).splitlines()
    expected = ["start", "(UTC)", "trace", "name", "status", "duration", "spans", "errors", "app"]
    assert expected == lines[1].split()
    assert HINT not in lines[-1]


def test_errors_cut_long_messages_on_one_line(store: str) -> None:
    """A long error message is cut with … on its row's line, never folded."""
    out = render(80, "errors", "-f", "table", "--store", store)
    groups = csv_rows(store, "errors")
    body = out.splitlines()[3 : 3 + len(groups)]
    assert [row["fingerprint"] for row in groups] == [line.split()[0] for line in body]
    assert any(line.rstrip().endswith("…") for line in body)
    assert out.splitlines()[-1].endswith(HINT)


@pytest.mark.parametrize("width", [80, 200])
def test_wide_sql_shows_one_record_per_row(store: str, width: int) -> None:
    """`select *` over spans is shown as records: one `column  value` line each."""
    out = render(width, *COMMANDS["sql *"], "--store", store)
    lines = out.splitlines()
    assert 2 == sum(line.startswith("─[ row ") for line in lines)
    assert any(line.split()[:1] == ["span_id"] for line in lines)
    assert "(one record per row: the columns do not fit; " + HINT == lines[-1]


def test_percentiles_are_durations_not_floats(store: str) -> None:
    """p95 of an odd count (879.99… µs) prints as 880µs in a table and 880 in json."""
    table = render(200, "slow", "-f", "table", "--store", store)
    assert "880µs" in table
    assert "879.9" not in table
    runner = CliRunner(env={"NO_COLOR": "1"})
    as_json = runner.invoke(app, ["slow", "--format", "json", "--store", store]).stdout
    assert '"p95_us": 880,' in as_json
