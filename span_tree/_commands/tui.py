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
    time_range: str = typer.Option(
        "24h", "--range", "-r", help="First time range of the dashboard: 15m, 1h, 24h, 7d, all."
    ),
) -> None:
    """Browse a store in the terminal: dashboard, traces, spans, error groups."""
    from span_tree._config import default_store
    from span_tree.tui import SpanTreeApp, StoreSource
    from span_tree.tui._source import TIME_RANGES

    if time_range not in dict(TIME_RANGES):
        raise typer.BadParameter(
            "use one of " + ", ".join(label for label, _ in TIME_RANGES), param_hint="--range"
        )
    source = StoreSource.from_url(store or default_store())
    SpanTreeApp(source, namespace=namespace, time_range=time_range).run()


def register(app: typer.Typer) -> None:
    """Add the ``tui`` command to ``app``."""
    app.command("tui")(tui)
