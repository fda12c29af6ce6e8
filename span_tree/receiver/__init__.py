"""The HTTP receiver: ``POST /v1/spans`` into the store, keyed by namespace.

Processes that cannot write to the store themselves (Lambda, short jobs, other
machines) send spans here with ``span_tree.sinks.http.HttpSink``; the receiver
validates them (all or nothing), writes them as Parquet and only then answers 202.
Starlette, uvicorn and pyarrow are imported here, never by ``import span_tree``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from span_tree._lazy import lazy_attributes
from span_tree.receiver._limits import DEFAULT_MAX_BODY, DEFAULT_MAX_SPANS

if TYPE_CHECKING:
    from span_tree.receiver._app import ReceiverConfig, create_app
    from span_tree.receiver._keys import KeyInfo, KeyStore
    from span_tree.receiver._server import key_store, serve

# Loaded on first use (PEP 562): every `spantree` command imports this package for its
# defaults, and only `serve` and `keys` need Starlette, uvicorn and pyarrow.
__getattr__ = lazy_attributes(
    __name__,
    {
        "ReceiverConfig": "span_tree.receiver._app",
        "create_app": "span_tree.receiver._app",
        "KeyInfo": "span_tree.receiver._keys",
        "KeyStore": "span_tree.receiver._keys",
        "key_store": "span_tree.receiver._server",
        "serve": "span_tree.receiver._server",
    },
)


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
