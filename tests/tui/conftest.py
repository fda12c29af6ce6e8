"""Fixtures of the TUI tests: fixed stores, an app factory and a helper to let loads land."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

# The TUI tests import their helpers (fixture_store, tui_helpers) by module name.
sys.path.insert(0, str(Path(__file__).parent))

import fixture_store
from tui_helpers import AppFactory

from span_tree.tui import SpanTreeApp, StoreSource


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
        root: Path | str,
        *,
        namespace: str | None = "shop",
        follow_interval: float = 2.0,
        storage_options: dict[str, Any] | None = None,
        only_namespace: str | None = None,
    ) -> SpanTreeApp:
        source = StoreSource.from_url(
            str(root), storage_options=storage_options, only_namespace=only_namespace
        )
        return SpanTreeApp(
            source,
            namespace=namespace,
            now=lambda: fixture_store.NOW_US,
            state_path=tmp_path / "state" / "tui.json",
            follow_interval=follow_interval,
        )

    return build
