"""A store that cannot be opened or reached is one ``error:`` line, never a traceback."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from span_tree.cli import app

# Nothing listens on port 1; one attempt, so botocore gives up at once.
UNREACHABLE_S3 = json.dumps(
    {
        "endpoint_url": "http://127.0.0.1:1",
        "key": "test",
        "secret": "test",
        "config_kwargs": {"retries": {"max_attempts": 1}},
    }
)


@pytest.mark.parametrize(
    "args",
    [
        ["keys", "list"],
        ["keys", "create", "--namespace", "shop"],
        ["keys", "revoke", "st_0123"],
        ["serve"],
    ],
)
def test_unknown_store_protocol_is_one_error_line(args: list[str]) -> None:
    """A --store URL with an unknown protocol exits 1 with one error line."""
    result = CliRunner().invoke(app, [*args, "--store", "nosuch://bucket"])
    assert (1, 1) == (result.exit_code, len(result.output.splitlines()))
    assert result.output.startswith("error: ")
    assert "Protocol not known: nosuch" in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["keys", "list"],
        ["traces"],
        ["compact"],
        ["prune", "--older-than", "1d"],
    ],
)
def test_unreachable_object_store_is_one_error_line(args: list[str]) -> None:
    """An object store whose endpoint does not answer exits 1 with one error line."""
    result = CliRunner().invoke(
        app, [*args, "--store", "s3://bucket/prefix", "--storage-options", UNREACHABLE_S3]
    )
    assert (1, 1) == (result.exit_code, len(result.output.splitlines()))
    assert result.output.startswith("error: ")
    assert "Could not connect to the endpoint URL" in result.output
