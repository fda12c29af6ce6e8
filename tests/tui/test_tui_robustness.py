"""Edge cases render a message, never a traceback: empty, missing, vanishing stores, long text."""

from __future__ import annotations

import shutil
from pathlib import Path

import fixture_store
from textual.widgets import Input, Sparkline, Static
from tui_helpers import SIZE, AppFactory, finish_loads, load, press, settle
from typer.testing import CliRunner

from span_tree.tui._dialogs import FindTraceScreen
from span_tree.tui._errors import ErrorGroupsScreen
from span_tree.tui._names import NamesScreen
from span_tree.tui._span import SpanScreen
from span_tree.tui._state import last_namespace, remember_namespace
from span_tree.tui._trace import TraceScreen


def message(app: object) -> str:
    return str(app.screen.query_one("#message", Static).render())  # type: ignore[attr-defined]


async def test_empty_store_says_how_to_fill_it(tmp_path: Path, make_app: AppFactory) -> None:
    """A store with no spans shows the span names screen with a hint instead of rows."""
    empty = tmp_path / "empty"
    empty.mkdir()
    app = make_app(empty, namespace=None)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, NamesScreen)
        assert "No spans in this store yet" in message(app)
        await load(pilot, "g")
        assert "No errors" in message(app)
        await press(pilot, "escape", "n")
        await press(pilot, "escape")
        assert app.is_running


async def test_missing_store_shows_the_reason(tmp_path: Path, make_app: AppFactory) -> None:
    """A store path that does not exist is reported on the span names screen."""
    app = make_app(tmp_path / "nowhere")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, NamesScreen)
        assert "no store at" in message(app)
        assert app.is_running
        # No data is drawn as nothing, not as full-height bars next to "0 spans".
        assert ([], []) == (
            list(app.screen.query_one("#volume", Sparkline).data or []),
            list(app.screen.query_one("#errors", Sparkline).data or []),
        )


async def test_store_vanishing_while_open(store: Path, make_app: AppFactory) -> None:
    """Deleting the store under an open TUI gives messages on every screen, no traceback."""
    app = make_app(store, follow_interval=0.1)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        shutil.rmtree(store)
        await load(pilot, "e")
        screen = app.screen
        assert isinstance(screen, NamesScreen)
        assert [] == screen.rows
        assert screen.message
        await pilot.press("f")
        await pilot.pause(0.3)
        await press(pilot, "f")
        await finish_loads(pilot)  # a refresh follow mode started before `f` turned it off
        await load(pilot, "g")
        assert isinstance(app.screen, ErrorGroupsScreen)
        assert message(app)
        await press(pilot, "escape", "t")
        assert isinstance(app.screen, FindTraceScreen)
        app.screen.query_one(Input).value = fixture_store.checkout_trace_id(1)
        await load(pilot, "enter")
        assert isinstance(app.screen, FindTraceScreen)
        assert app.is_running
        assert app.return_code is None


async def test_long_names_and_messages(store: Path, make_app: AppFactory) -> None:
    """Very long span names and messages are cut in lists and shown whole in the span view."""
    app = make_app(store, namespace="batch")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, NamesScreen)
        assert fixture_store.LONG_NAME in [row.name for row in screen.rows]
        await press(pilot, "t")
        app.screen.query_one(Input).value = fixture_store.report_trace()[0].trace_id
        await load(pilot, "enter")
        assert isinstance(app.screen, TraceScreen)
        await press(pilot, "down")
        await load(pilot, "enter")
        span_screen = app.screen
        assert isinstance(span_screen, SpanScreen)
        assert fixture_store.LONG_NAME == span_screen.span.name
        await press(pilot, "escape", "up")
        await load(pilot, "enter")
        assert isinstance(app.screen, SpanScreen)
        assert fixture_store.LONG_MESSAGE == app.screen.shown_events()[0].message


def test_last_namespace_is_remembered_per_store(tmp_path: Path) -> None:
    """The state file keeps one namespace per store and survives being corrupt."""
    path = tmp_path / "cfg" / "tui.json"
    assert last_namespace(path, "/a") is None
    remember_namespace(path, "/a", "shop")
    remember_namespace(path, "/b", "batch")
    assert ("shop", "batch") == (last_namespace(path, "/a"), last_namespace(path, "/b"))
    path.write_text("{not json")
    assert last_namespace(path, "/a") is None
    remember_namespace(path, "/a", "x")
    assert "x" == last_namespace(path, "/a")


def test_tui_command_is_registered() -> None:
    """`spantree tui --help` documents --store and --namespace."""
    from span_tree.cli import app

    result = CliRunner().invoke(app, ["tui", "--help"])
    assert 0 == result.exit_code
    assert "--store" in result.output
    assert "--namespace" in result.output
    assert "--range" in result.output


def test_tui_command_refuses_an_unknown_range(tmp_path: Path) -> None:
    """`spantree tui --range 3w` is one error line naming the valid ranges, exit 1."""
    from span_tree.cli import app

    result = CliRunner().invoke(app, ["tui", "--store", str(tmp_path), "--range", "3w"])
    assert (1, 1) == (result.exit_code, len(result.output.splitlines()))
    assert "error: Invalid value for --range: use one of 15m, 1h, 24h, 7d, all" in result.output


async def test_range_option_sets_the_first_time_range(store: Path, make_app: AppFactory) -> None:
    """The app's time_range is the span names screen's first range."""
    app = make_app(store)
    app.time_range = "all"
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert "all" == app.screen.filters.time_range  # type: ignore[attr-defined]
