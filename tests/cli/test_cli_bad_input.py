"""Bad input to the ``spantree`` console script, run as a real subprocess: one
``error: ...`` line on stderr, nothing on stdout, exit code 1 (never typer's box, never
a silent success)."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.analytics_store import build_store
from support.cli import run

pytestmark = pytest.mark.slow

SPANTREE = str(Path(sys.executable).parent / "spantree")
UNREACHABLE_S3 = (
    '{"endpoint_url": "http://127.0.0.1:1", "config_kwargs": {"retries": {"max_attempts": 1}}}'
)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The fixture store's path (only the annotate tests write to it)."""
    return build_store(tmp_path_factory.mktemp("store"))


def spantree(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the console script in a fresh process without SPANTREE_* settings."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SPANTREE_")}
    clean["NO_COLOR"] = "1"
    return subprocess.run(
        [SPANTREE, *args],
        capture_output=True,
        text=True,
        env={**clean, **(env or {})},
        timeout=120,
        check=False,
    )


def assert_one_error(result: subprocess.CompletedProcess[str], message: str) -> None:
    """Exit 1, empty stdout, exactly one stderr line: ``error: ...message...``."""
    assert (1, "", 1) == (result.returncode, result.stdout, len(result.stderr.splitlines())), (
        result.stderr
    )
    assert result.stderr.startswith("error: ")
    assert message in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["sql", "   "], "give a query"),
        (["sql", "select 1; select 2"], "one SQL statement at a time (this text has 2)"),
        (["sql", "select * form spans"], 'syntax error at or near "spans" (--verbose'),
        (["sql", "select * from nope"], "(spantree sql --views lists the views)"),
        (["traces", "--status", "bogus"], "--status must be one of succeeded, failed, started"),
        (["errors", "--status", "bogus"], "--status must be one of open, crash, silenced"),
        (["tui", "--range", "3w"], "Invalid value for --range: use one of 15m"),
        (["traces", "--storage-options", "{bad json"], "Invalid value for --storage-options"),
        (["prune", "--older-than", "banana"], "Invalid value for --older-than"),
        (["keys", "create"], "Missing option '--namespace'"),
        (["keys", "revoke", "nosuchkey"], "no such key 'nosuchkey'"),
        (["annotate", "0123456789abcdef"], "no error group with fingerprint '0123456789abcdef'"),
        (["annotate", "0123456789abcdef", "--clear"], "has no annotation to clear"),
        (["nosuchcommand"], "No such command 'nosuchcommand' (see spantree --help)"),
    ],
)
def test_bad_input_is_one_error_line(store: str, args: list[str], message: str) -> None:
    """Each bad input gets one `error:` line and exit code 1."""
    assert_one_error(spantree(*args, "--store", store), message)


def test_sql_error_verbose_keeps_the_position(store: str) -> None:
    """--verbose shows DuckDB's whole message, with the caret under the position."""
    result = spantree("sql", "select * form spans", "--verbose", "--store", store)
    assert 1 == result.returncode
    assert "LINE 1: select * form spans" in result.stderr
    assert "^" in result.stderr


def test_sql_one_statement_with_semicolon_runs(store: str) -> None:
    """A single statement ending in ';' is one statement, not an error."""
    result = spantree("sql", "select 1 as n;", "--store", store, "--format", "csv")
    assert (0, "n\n1\n") == (result.returncode, result.stdout)


@pytest.mark.parametrize("command", [["compact"], ["prune", "--older-than", "30d"]])
def test_maintenance_of_a_missing_store_is_an_error(tmp_path: Path, command: list[str]) -> None:
    """compact / prune on a store path that does not exist say so (not '0 files')."""
    missing = tmp_path / "missing"
    assert_one_error(spantree(*command, "--store", str(missing)), f"no store at {missing}")
    assert not missing.exists()


def test_missing_s3_credentials_name_the_store(tmp_path: Path) -> None:
    """Without S3 credentials the error names the store it could not read."""
    no_credentials = {
        "AWS_ACCESS_KEY_ID": "",
        "AWS_SECRET_ACCESS_KEY": "",
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env = {**env, **no_credentials}
    env = {k: v for k, v in env.items() if v != ""}
    result = subprocess.run(
        [SPANTREE, "traces", "--store", "s3://bucket/spans", "--storage-options", UNREACHABLE_S3],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert_one_error(result, "cannot read store s3://bucket/spans: Unable to locate credentials")


def test_annotate_force_then_clear(store: str) -> None:
    """--force annotates an unknown fingerprint; --clear removes it from the views."""
    assert (0, "annotated feedfacefeedface: open WARN\n", "") == run(
        "annotate", "feedfacefeedface", "--force", "--store", store
    )
    query = "select fingerprint from annotations order by fingerprint"
    assert "feedfacefeedface" in run("sql", query, "--store", store, "-f", "csv")[1].split()
    assert (0, "cleared the annotation of feedfacefeedface\n", "") == run(
        "annotate", "feedfacefeedface", "--clear", "--store", store
    )
    assert "feedfacefeedface" not in run("sql", query, "--store", store, "-f", "csv")[1].split()


def test_clear_returns_an_error_group_to_its_default(store: str) -> None:
    """A cleared group is 'open' again at its default level in `errors`."""
    _, out, _ = run("errors", "--fatal", "--format", "csv", "--store", store)
    row = next(csv.DictReader(io.StringIO(out)))
    fingerprint, default_level = row["fingerprint"], row["level"]
    run("annotate", fingerprint, "--status", "crash", "--level", "ALERT", "--store", store)
    run("annotate", fingerprint, "--clear", "--store", store)
    _, out, _ = run("errors", "--fatal", "--format", "csv", "--store", store)
    after = {r["fingerprint"]: r for r in csv.DictReader(io.StringIO(out))}[fingerprint]
    assert ("open", default_level, "") == (after["status"], after["level"], after["note"])


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("SPANTREE_TAGS", "broken", "SPANTREE_TAGS item 'broken' is not KEY=VALUE: ignored"),
        ("SPANTREE_CONSOLE", "maybe", "SPANTREE_CONSOLE='maybe' is not one of 1/0"),
    ],
)
def test_bad_environment_warns_once(
    tmp_path: Path, variable: str, value: str, message: str
) -> None:
    """A SPANTREE_* value that is not understood is one warning, however often configured."""
    script = tmp_path / "app.py"
    script.write_text(
        "import span_tree\n"
        "for _ in range(3):\n"
        "    span_tree.configure(store=None, jsonl=False)\n"
        "with span_tree.span('work'):\n"
        "    pass\n"
        "print('done')\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPANTREE_")}
    result = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        env={**env, variable: value},
        timeout=60,
        check=False,
    )
    assert (0, "done\n") == (result.returncode, result.stdout)
    assert 1 == result.stderr.count(message), result.stderr
