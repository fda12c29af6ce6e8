"""A newcomer's first run, as real subprocesses: ``spantree demo`` then the commands it suggests."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

# The console script installed next to this interpreter.
SPANTREE = [str(Path(sys.executable).parent / "spantree")]


def spantree(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run ``spantree`` in a fresh process (bounded by a timeout)."""
    return subprocess.run(
        [*SPANTREE, *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """An environment without span-tree settings, with HOME in the temporary directory."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SPANTREE_")}
    clean["HOME"] = str(tmp_path / "home")
    clean["NO_COLOR"] = "1"
    return clean


@pytest.mark.slow
def test_demo_then_sql(tmp_path: Path, env: dict[str, str]) -> None:
    """demo writes traces into the store, prints the report; sql and trace read them back."""
    store = str(tmp_path / "store")
    demo = spantree("demo", "--store", store, "--traces", "12", env=env)
    assert 0 == demo.returncode, demo.stderr
    assert "Traceback" not in demo.stdout + demo.stderr
    for heading in ("dashboard", "slowest spans", "error groups", "Next, try:"):
        assert heading in demo.stdout
    # 12 requests + one nightly run per release (4 for the last one).
    counted = spantree(
        "sql", "select count(*) as n from traces", "--store", store, "--format", "csv", env=env
    )
    assert (0, "n\n18\n") == (counted.returncode, counted.stdout)
    listed = spantree("traces", "--store", store, "--format", "csv", "--limit", "1", env=env)
    trace_id = next(csv.DictReader(io.StringIO(listed.stdout)))["trace_id"]
    shown = spantree("trace", trace_id[:15], "--store", store, env=env)
    assert 0 == shown.returncode, shown.stderr
    assert "nightly_report" in shown.stdout
    bad = spantree("sql", "select * form spans", "--store", store, env=env)
    assert 1 == bad.returncode
    assert bad.stderr.startswith("error: Parser Error: syntax error")
    assert "Traceback" not in bad.stderr


@pytest.mark.parametrize("kind", ["unknown protocol", "a file, not a directory"])
def test_demo_into_an_unusable_store_says_so(
    tmp_path: Path, env: dict[str, str], kind: str
) -> None:
    """demo into a store it cannot write reports one error, never "wrote N traces"."""
    if kind == "unknown protocol":
        store = "nosuch://bucket"
    else:
        (tmp_path / "file").write_text("not a store")
        store = str(tmp_path / "file")
    env = {**env, "XDG_CACHE_HOME": str(tmp_path / "cache")}  # where the spool goes
    demo = spantree("demo", "--store", store, "--traces", "2", env=env)
    assert (1, "") == (demo.returncode, demo.stdout)
    assert demo.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "Traceback" not in demo.stderr
