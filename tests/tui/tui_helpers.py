"""Helpers of the TUI tests: the terminal size and waiting for loads to land."""

from __future__ import annotations

from collections.abc import Callable

from textual.pilot import Pilot

from span_tree.tui import SpanTreeApp

SIZE = (120, 36)

AppFactory = Callable[..., SpanTreeApp]


async def settle(pilot: Pilot[None]) -> None:
    """Wait until every worker finished and its results reached the screen."""
    app = pilot.app
    for _ in range(100):
        await app.workers.wait_for_complete()
        await pilot.pause()
        await pilot.pause()
        if not any(worker.is_running for worker in app.workers):
            return


async def press(pilot: Pilot[None], *keys: str) -> None:
    """Press ``keys`` one by one, letting each key's loading finish before the next."""
    for key in keys:
        await pilot.press(key)
        await settle(pilot)
