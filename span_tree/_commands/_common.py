"""What every command module shares: option help, ``--storage-options`` parsing, and
turning a store that cannot be reached or read into one ``error: ...`` line."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer

STORE_HELP = "Store path or fsspec URL (default: SPANTREE_STORE or ~/.spantree)."
OPTIONS_HELP = "fsspec storage options as a JSON object (credentials, endpoint_url...)."
NAMESPACE_HELP = "Only this namespace."


def fail(message: str) -> typer.Exit:
    """Print ``error: message`` on stderr; return the exit (code 1) to raise."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=1)


def parse_storage_options(text: str | None) -> dict[str, Any] | None:
    """The ``--storage-options`` JSON object, or ``None`` when not given.

    Raises:
        typer.BadParameter: the text is not a JSON object.
    """
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError as error:
        raise typer.BadParameter(f"not JSON: {error}", param_hint="--storage-options") from None
    if not isinstance(value, dict):
        raise typer.BadParameter("must be a JSON object", param_hint="--storage-options")
    return value


def store_access_errors() -> tuple[type[BaseException], ...]:
    """What reaching a store can raise: a bad URL, I/O, or an object-store client error.

    s3fs turns S3's answers into ``OSError`` but lets botocore's own errors (endpoint
    unreachable, no credentials) through; botocore is only looked up if already loaded.
    """
    errors: tuple[type[BaseException], ...] = (OSError, ValueError)
    botocore = sys.modules.get("botocore.exceptions")
    if botocore is not None:
        errors += (botocore.BotoCoreError,)
    return errors


@contextmanager
def store_errors(what: str) -> Iterator[None]:
    """Report a store that cannot be opened, reached or written as ``error: what: ...``.

    Args:
        what: the failed action, e.g. ``"cannot read keys of s3://bucket"``.

    Raises:
        typer.Exit: (code 1) after printing the error line.
    """
    try:
        yield
    except store_access_errors() as error:
        raise fail(f"{what}: {error}") from None
