"""Running the ``spantree`` command in-process for CLI tests."""

from __future__ import annotations

from typer.testing import CliRunner

from span_tree.cli import app


def run(*args: str) -> tuple[int, str, str]:
    """Invoke ``spantree`` in-process; return (exit code, stdout, stderr)."""
    runner = CliRunner(env={"NO_COLOR": "1", "FORCE_COLOR": None, "COLUMNS": None})
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr
