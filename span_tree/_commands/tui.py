"""``spantree tui``: open the terminal UI on a store."""

from __future__ import annotations

import typer


def tui(
    store: str | None = typer.Option(
        None, "--store", help="Store path or fsspec URL (default: SPANTREE_STORE or ~/.spantree)."
    ),
    namespace: str | None = typer.Option(
        None, "--namespace", "-n", help="Open this namespace directly (default: the last used)."
    ),
) -> None:
    """Browse a store in the terminal: dashboard, traces, spans, error groups."""
    from span_tree._config import default_store
    from span_tree.tui import SpanTreeApp, StoreSource

    source = StoreSource.from_url(store or default_store())
    SpanTreeApp(source, namespace=namespace).run()


def register(app: typer.Typer) -> None:
    """Add the ``tui`` command to ``app``."""
    app.command("tui")(tui)
