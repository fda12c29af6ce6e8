"""Helpers of the TUI tests: the terminal size, and waiting for loads without polling.

Every screen posts ``Loaded`` once the data of its newest load is drawn (after the
refresh that lays out its tables). A test waits for that message, not for a quiet
spell: ``load`` for keys (or clicks) that make a screen read data, ``press`` for keys
that only change the view.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from textual.pilot import Pilot

from span_tree.tui import SpanTreeApp
from span_tree.tui._screen import BaseScreen

SIZE = (120, 36)
# A load on the test store takes well under a second; this only turns a hang into an
# error naming the screen that never said it was shown.
LOAD_TIMEOUT = 60.0

AppFactory = Callable[..., SpanTreeApp]
Marks = dict[BaseScreen[Any], int]


def _app(pilot: Pilot[None]) -> SpanTreeApp:
    app = pilot.app
    assert isinstance(app, SpanTreeApp)
    return app


def _marks(app: SpanTreeApp) -> Marks:
    return {s: s.loads_shown for s in app.screen_stack if isinstance(s, BaseScreen)}


def _top(app: SpanTreeApp) -> BaseScreen[Any] | None:
    """The top-most screen that loads data (dialogs such as help or the filter don't)."""
    screens = [s for s in app.screen_stack if isinstance(s, BaseScreen)]
    return screens[-1] if screens else None


def _shown(app: SpanTreeApp, before: Marks) -> bool:
    top = _top(app)
    return top is not None and not top.load_pending and top.loads_shown > before.get(top, 0)


async def _wait_shown(app: SpanTreeApp, before: Marks) -> None:
    async def wait() -> None:
        while not _shown(app, before):
            await app.wait_for_load()

    try:
        await asyncio.wait_for(wait(), LOAD_TIMEOUT)
    except TimeoutError:
        top = _top(app)
        raise AssertionError(f"no Loaded from {top!r} within {LOAD_TIMEOUT:.0f}s") from None


async def settle(pilot: Pilot[None]) -> None:
    """Wait until the app's first screen (under any picker) shows its data."""
    await _wait_shown(_app(pilot), {})


async def loaded_after(pilot: Pilot[None], action: Awaitable[Any]) -> None:
    """Run ``action`` (a click, a key), then wait until the screen it leads to (or the
    one it reloads) shows its new data."""
    app = _app(pilot)
    before = _marks(app)
    await action
    await _wait_shown(app, before)


async def load(pilot: Pilot[None], *keys: str) -> None:
    """Press ``keys`` one by one, each one making a screen load: wait for its data."""
    for key in keys:
        await loaded_after(pilot, pilot.press(key))


async def press(pilot: Pilot[None], *keys: str) -> None:
    """Press ``keys`` that only change the view (cursor, folds, dialogs, sorting).

    Raises:
        AssertionError: a key started a load (outside follow mode): use ``load``.
    """
    app = _app(pilot)
    for key in keys:
        following = app.follow
        await pilot.press(key)
        await pilot.pause()
        if not (following or app.follow):  # follow mode loads on its own timer
            pending = _pending(app)
            assert not pending, f"{key!r} started a load on {pending}: use load()"


def _pending(app: SpanTreeApp) -> list[BaseScreen[Any]]:
    return [s for s in app.screen_stack if isinstance(s, BaseScreen) and s.load_pending]


async def finish_loads(pilot: Pilot[None]) -> None:
    """Wait until no screen has a load under way (one follow mode started, say)."""
    app = _app(pilot)

    async def wait() -> None:
        while _pending(app):
            await app.wait_for_load()

    await asyncio.wait_for(wait(), LOAD_TIMEOUT)
