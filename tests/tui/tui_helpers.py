"""Helpers of the TUI tests: the terminal size and waiting for loads to land."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual.app import App
from textual.pilot import Pilot
from textual.widgets import DataTable
from textual.worker import WorkerCancelled

from span_tree.tui import SpanTreeApp

SIZE = (120, 36)

AppFactory = Callable[..., SpanTreeApp]


# Consecutive quiet checks that count as settled: right after a key the next screen may
# not have mounted (or started its worker) yet, so one quiet check proves nothing.
QUIET_CHECKS = 3


async def settle(pilot: Pilot[None]) -> None:
    """Wait until every worker finished and its results reached the screen."""
    app = pilot.app
    quiet = 0
    for _ in range(300):
        try:
            await app.workers.wait_for_complete()
        except WorkerCancelled:
            # An exclusive worker was replaced by a newer one (follow mode's timer under
            # load): not done yet, look again.
            quiet = 0
            continue
        await pilot.pause()
        busy = any(worker.is_running for worker in app.workers) or _tables_pending(app)
        quiet = 0 if busy else quiet + 1
        if quiet >= QUIET_CHECKS:
            return


def _tables_pending(app: App[Any]) -> bool:
    """Tell whether a DataTable still has to recompute its column widths.

    DataTable does that on its next Idle event; under CI load a snapshot taken before it
    shows every column at its header's width (a flaky, truncated table).
    """
    return any(
        table._require_update_dimensions  # private, but the one flag that says it
        for table in app.screen.query(DataTable)
    )


async def press(pilot: Pilot[None], *keys: str) -> None:
    """Press ``keys`` one by one, letting each key's loading finish before the next."""
    for key in keys:
        await pilot.press(key)
        await settle(pilot)
