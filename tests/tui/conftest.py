"""Fixtures of the TUI tests: fixed stores, an app factory and a helper to let loads land."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot

sys.path.insert(0, str(Path(__file__).parent))

import fixture_store  # noqa: E402

from span_tree.tui import SpanTreeApp, StoreSource  # noqa: E402

SIZE = (120, 36)

AppFactory = Callable[..., SpanTreeApp]


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """A fresh copy of the standard fixture store (shop + batch namespaces)."""
    return fixture_store.write_store(tmp_path / "store", fixture_store.standard_records())


@pytest.fixture(scope="session")
def huge_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store holding one trace of 10,000 spans (built once: it takes a moment)."""
    root = tmp_path_factory.mktemp("huge") / "store"
    return fixture_store.write_store(root, fixture_store.huge_trace(10_000))


@pytest.fixture
def make_app(tmp_path: Path) -> AppFactory:
    """Build a ``SpanTreeApp`` on a store with the fixed clock and a private state file."""

    def build(
        root: Path | str, *, namespace: str | None = "shop", follow_interval: float = 2.0
    ) -> SpanTreeApp:
        return SpanTreeApp(
            StoreSource.from_url(str(root)),
            namespace=namespace,
            now=lambda: fixture_store.NOW_US,
            state_path=tmp_path / "state" / "tui.json",
            follow_interval=follow_interval,
        )

    return build


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
