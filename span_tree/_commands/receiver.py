"""``spantree serve`` (the HTTP receiver) and ``spantree keys create|list|revoke``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import typer

from span_tree._commands._common import (
    OPTIONS_HELP,
    STORE_HELP,
    fail,
    parse_storage_options,
    store_errors,
)
from span_tree.receiver._limits import (
    DEFAULT_MAX_BODY,
    DEFAULT_MAX_PARTITIONS,
    DEFAULT_MAX_SPANS,
)

if TYPE_CHECKING:
    from span_tree.receiver import KeyStore


def _store(store: str | None) -> str:
    from span_tree._config import default_store

    return store or default_store()


@contextmanager
def _keys(store: str | None, storage_options: str | None) -> Iterator[KeyStore]:
    """The store's keys; an unreachable or bad store is one ``error:`` line."""
    from span_tree.receiver import key_store

    url = _store(store)
    options = parse_storage_options(storage_options)
    with store_errors(f"cannot use the keys of store {url}"):
        yield key_store(url, storage_options=options)


def serve(
    store: str | None = typer.Option(None, "--store", help=STORE_HELP),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(4319, "--port", help="TCP port to listen on."),
    max_body: int = typer.Option(
        DEFAULT_MAX_BODY, "--max-body", help="Largest request body in bytes (also unzipped)."
    ),
    max_spans: int = typer.Option(
        DEFAULT_MAX_SPANS, "--max-spans", help="Most spans accepted in one request."
    ),
    max_age_days: float | None = typer.Option(
        None,
        "--max-age-days",
        help="Refuse spans that started more than this many days ago (default: no limit).",
    ),
    max_partitions: int = typer.Option(
        DEFAULT_MAX_PARTITIONS,
        "--max-partitions",
        help="Most distinct start days (partitions) in one request.",
    ),
    compact_interval: float = typer.Option(
        600.0,
        "--compact-interval",
        min=0.0,
        help="Seconds between background compactions of the store (0: never).",
    ),
    compact_min_age: float = typer.Option(
        300.0,
        "--compact-min-age",
        min=0.0,
        help="Files younger than this many seconds wait for a later compaction.",
    ),
    workers: int = typer.Option(1, "--workers", help="Worker processes."),
    key_refresh: float = typer.Option(
        5.0, "--key-refresh", help="Seconds before created or revoked keys take effect."
    ),
    storage_options: str | None = typer.Option(None, "--storage-options", help=OPTIONS_HELP),
    access_log: bool = typer.Option(False, "--access-log", help="Log every request."),
) -> None:
    """Run the HTTP receiver: POST /v1/spans with X-API-Key writes spans to the store."""
    from span_tree.receiver import serve as run
    from span_tree.storage import open_store

    url = _store(store)
    options = parse_storage_options(storage_options)
    with store_errors("--store"):
        open_store(url, storage_options=options)  # a bad URL: one line, not a traceback
    run(
        url,
        host=host,
        port=port,
        storage_options=options,
        max_body=max_body,
        max_spans=max_spans,
        workers=workers,
        key_refresh_seconds=key_refresh,
        max_age_days=max_age_days,
        max_partitions=max_partitions,
        compact_interval=compact_interval or None,
        compact_min_age=compact_min_age,
        access_log=access_log,
    )


keys_app = typer.Typer(
    help="Create, list and revoke the receiver's API keys.", no_args_is_help=True
)


@keys_app.command("create")
def keys_create(
    namespace: str = typer.Option(..., "--namespace", "-n", help="Namespace the key writes to."),
    store: str | None = typer.Option(None, "--store", help=STORE_HELP),
    storage_options: str | None = typer.Option(None, "--storage-options", help=OPTIONS_HELP),
) -> None:
    """Create an API key for NAMESPACE and print it (only the key, on stdout)."""
    from span_tree.receiver._keys import validate_namespace

    try:
        validate_namespace(namespace)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--namespace") from None
    with _keys(store, storage_options) as keys:
        key = keys.create(namespace)
    typer.echo(key)
    typer.echo("Keep this key: it is stored hashed and cannot be shown again.", err=True)


@keys_app.command("list")
def keys_list(
    store: str | None = typer.Option(None, "--store", help=STORE_HELP),
    storage_options: str | None = typer.Option(None, "--storage-options", help=OPTIONS_HELP),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
) -> None:
    """List the keys (id, namespace, created, revoked); never the keys themselves."""
    with _keys(store, storage_options) as keys:
        infos = keys.list_keys()
    if as_json:
        for info in infos:
            typer.echo(json.dumps(info.__dict__))
        return
    typer.echo(f"{'ID':<14} {'NAMESPACE':<24} {'CREATED':<28} REVOKED")
    for info in infos:
        created = info.created_at
        typer.echo(f"{info.key_id:<14} {info.namespace:<24} {created:<28} {info.revoked_at or '-'}")


@keys_app.command("revoke")
def keys_revoke(
    key: str = typer.Argument(..., help="The key, or its id as `keys list` shows it."),
    store: str | None = typer.Option(None, "--store", help=STORE_HELP),
    storage_options: str | None = typer.Option(None, "--storage-options", help=OPTIONS_HELP),
) -> None:
    """Revoke a key: receivers refuse it within seconds."""
    try:
        with _keys(store, storage_options) as keys:
            info = keys.revoke(key)
    except KeyError:
        raise fail(
            f"no such key {key!r} in store {_store(store)} (see spantree keys list)"
        ) from None
    typer.echo(f"revoked {info.key_id} ({info.namespace})")


def register(app: typer.Typer) -> None:
    """Add ``serve`` and ``keys`` to the ``spantree`` app."""
    app.command("serve")(serve)
    app.add_typer(keys_app, name="keys")
