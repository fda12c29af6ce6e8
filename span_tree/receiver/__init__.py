"""The HTTP receiver: ``POST /v1/spans`` into the store, keyed by namespace.

Processes that cannot write to the store themselves (Lambda, short jobs, other
machines) send spans here with ``span_tree.sinks.http.HttpSink``; the receiver
validates them (all or nothing), writes them as Parquet and only then answers 202.
Starlette, uvicorn and pyarrow are imported here, never by ``import span_tree``.
"""

from __future__ import annotations

from span_tree.receiver._app import ReceiverConfig, create_app
from span_tree.receiver._ingest import DEFAULT_MAX_BODY, DEFAULT_MAX_SPANS
from span_tree.receiver._keys import KeyInfo, KeyStore
from span_tree.receiver._server import key_store, serve

__all__ = [
    "DEFAULT_MAX_BODY",
    "DEFAULT_MAX_SPANS",
    "KeyInfo",
    "KeyStore",
    "ReceiverConfig",
    "create_app",
    "key_store",
    "serve",
]
