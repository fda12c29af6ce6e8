"""Running the receiver under uvicorn, and opening a store's key list."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from starlette.applications import Starlette

from span_tree.receiver._app import ReceiverConfig, _build
from span_tree.receiver._keys import KeyStore
from span_tree.receiver._limits import (
    DEFAULT_MAX_BODY,
    DEFAULT_MAX_PARTITIONS,
    DEFAULT_MAX_SPANS,
)

# How worker processes (uvicorn --workers) learn the configuration of their parent.
_CONFIG_ENV = "SPANTREE_RECEIVER_CONFIG"


def key_store(
    store: str | None = None, *, storage_options: Mapping[str, Any] | None = None
) -> KeyStore:
    """Return the API keys of a store (path or fsspec URL; default: the local store).

    Raises:
        ValueError: the store URL cannot be opened.
    """
    from span_tree.storage import open_store

    location = open_store(store, storage_options=storage_options)
    return KeyStore(location.fs, location.root)


def serve(
    store: str | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 4319,
    storage_options: Mapping[str, Any] | None = None,
    max_body: int = DEFAULT_MAX_BODY,
    max_spans: int = DEFAULT_MAX_SPANS,
    workers: int = 1,
    key_refresh_seconds: float = 5.0,
    max_age_days: float | None = None,
    max_partitions: int = DEFAULT_MAX_PARTITIONS,
    compact_interval: float | None = 600.0,
    compact_min_age: float = 300.0,
    access_log: bool = False,
    log_level: str = "info",
) -> None:
    """Serve the receiver until SIGINT/SIGTERM (in-flight requests finish first).

    Args:
        store: store path or fsspec URL (default: the local store).
        host, port: where to listen.
        storage_options: fsspec options for the store.
        max_body: largest request body in bytes (as sent and once decompressed).
        max_spans: most spans in one request.
        workers: worker processes (each parses and writes on its own core).
        key_refresh_seconds: how soon created or revoked keys take effect.
        max_age_days: refuse spans that started longer ago (None: only before 1970).
        max_partitions: most distinct start days in one request.
        compact_interval: seconds between background compactions of the store (None:
            never; several receivers on one store may all compact, safely).
        compact_min_age: files younger than this (seconds) wait for a later pass.
        access_log: log one line per request (never includes the API key).
        log_level: uvicorn's log level.
    """
    import uvicorn

    from span_tree.receiver._protocol import NoDelayHttpToolsProtocol

    config = ReceiverConfig(
        store=store,
        storage_options=dict(storage_options or {}) or None,
        max_body=max_body,
        max_spans=max_spans,
        key_refresh_seconds=key_refresh_seconds,
        max_age_days=max_age_days,
        max_partitions=max_partitions,
        compact_interval=compact_interval,
        compact_min_age=compact_min_age,
    )
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "access_log": access_log,
        "log_level": log_level,
        # Bounded: beyond this many open connections clients get 503 and retry.
        "limit_concurrency": 512,
        "timeout_graceful_shutdown": 30,
        "http": NoDelayHttpToolsProtocol,
    }
    if workers <= 1:
        uvicorn.run(_build(config), **options)
        return
    os.environ[_CONFIG_ENV] = json.dumps(asdict(config))
    uvicorn.run(
        "span_tree.receiver._server:app_from_environment",
        factory=True,
        workers=workers,
        **options,
    )


def app_from_environment() -> Starlette:
    """Build the app in a uvicorn worker process from its parent's configuration."""
    values = json.loads(os.environ[_CONFIG_ENV])
    return _build(ReceiverConfig(**values))
