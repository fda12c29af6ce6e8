"""Pilot tests of the span names screen: rows, toggles, filters, sorting, namespaces, follow."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import fixture_store
from textual.widgets import Input
from textual.widgets.data_table import ColumnKey
from tui_helpers import LOAD_TIMEOUT, SIZE, AppFactory, load, loaded_after, press, settle

from span_tree.tui._dialogs import FilterScreen, HelpScreen, NamespaceScreen
from span_tree.tui._names import NamesScreen
from span_tree.tui._trace import TraceScreen
from span_tree.tui._traces import SpanListScreen


def names(app: object) -> list[str]:
    screen = app.screen  # type: ignore[attr-defined]
    assert isinstance(screen, NamesScreen)
    return sorted(row.name for row in screen.rows)


async def test_names_lists_one_row_per_span_name(store: Path, make_app: AppFactory) -> None:
    """The span names screen shows each span name of the namespace with ok/failed counts."""
    app = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, NamesScreen)
        counts = {row.name: (row.ok, row.failed) for row in screen.rows}
        assert {
            "checkout": (9, 3),
            "auth.verify": (12, 0),
            "db.query": (24, 0),
            "payment.charge": (9, 3),
        } == counts
        assert 60 == len(screen.timeline.volume)
        assert 6 == sum(screen.timeline.errors)


async def test_e_cycles_error_crash_ok_all(store: Path, make_app: AppFactory) -> None:
    """`e` moves the status toggle all -> error -> crash -> ok -> all and reloads."""
    app = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await load(pilot, "e")
        assert "error" == app.screen.filters.status  # type: ignore[attr-defined]
        assert ["checkout", "payment.charge"] == names(app)
        await load(pilot, "e")
        assert "crash" == app.screen.filters.status  # type: ignore[attr-defined]
        assert [] == names(app)  # nothing is annotated as a crash yet
        await load(pilot, "e")
        assert ["auth.verify", "checkout", "db.query", "payment.charge"] == names(app)
        assert "ok" == app.screen.filters.status  # type: ignore[attr-defined]
        await load(pilot, "e")
        assert "all" == app.screen.filters.status  # type: ignore[attr-defined]


async def test_s_cycles_slow_fast_all(store: Path, make_app: AppFactory) -> None:
    """`s` keeps only spans over (slow) or within (fast) their name's p95."""
    app = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await load(pilot, "s")
        screen = app.screen
        assert "slow" == screen.filters.speed  # type: ignore[attr-defined]
        slow = {row.name: row.ok + row.failed for row in screen.rows}  # type: ignore[attr-defined]
        assert {"checkout": 1, "db.query": 2} == slow
        await load(pilot, "s")
        assert "fast" == screen.filters.speed  # type: ignore[attr-defined]
        fast = {row.name: row.ok + row.failed for row in screen.rows}  # type: ignore[attr-defined]
        assert 11 == fast["checkout"]
        await load(pilot, "s")
        assert "all" == screen.filters.speed  # type: ignore[attr-defined]


async def test_r_cycles_the_time_range(store: Path, make_app: AppFactory) -> None:
    """`r` narrows to the last 15 minutes: only the three newest checkouts count."""
    app = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert "24h" == app.screen.filters.time_range  # type: ignore[attr-defined]
        await load(pilot, "r", "r", "r")  # 7d, all, 15m
        screen = app.screen
        assert "15m" == screen.filters.time_range  # type: ignore[attr-defined]
        rows = {row.name: (row.ok, row.failed) for row in screen.rows}  # type: ignore[attr-defined]
        assert (2, 1) == rows["checkout"]


async def test_slash_applies_tag_filters(store: Path, make_app: AppFactory) -> None:
    """`/` then ``env=staging`` keeps the spans of the four staging traces."""
    app = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "slash")
        assert isinstance(app.screen, FilterScreen)
        await pilot.press(*"env=staging")
        await load(pilot, "enter")
        screen = app.screen
        assert isinstance(screen, NamesScreen)
        assert {"env": "staging"} == screen.filters.tags
        assert 4 == {row.name: row.ok + row.failed for row in screen.rows}["checkout"]


async def test_slash_applies_a_sql_where_filter(store: Path, make_app: AppFactory) -> None:
    """A SQL WHERE fragment over spans narrows the rows."""
    app = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "slash")
        app.screen.query_one(Input).value = "duration_us > 100000"
        await load(pilot, "enter")
        assert ["checkout"] == names(app)


async def test_bad_sql_filter_shows_a_message(store: Path, make_app: AppFactory) -> None:
    """A filter that is not one SQL expression is refused with a message, not a traceback."""
    app = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "slash")
        app.screen.query_one(Input).value = "1=1) union select 1 --"
        await load(pilot, "enter")
        screen = app.screen
        assert isinstance(screen, NamesScreen)
        assert [] == screen.rows
        assert "bad filter" in screen.message
        await press(pilot, "slash")
        app.screen.query_one(Input).value = "nosuchcolumn > 1"
        await load(pilot, "enter")
        assert "nosuchcolumn" in screen.message


async def test_escape_keeps_the_old_filter(store: Path, make_app: AppFactory) -> None:
    """Esc in the filter dialog changes nothing."""
    app = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "slash")
        app.screen.query_one(Input).value = "env=prod"
        await press(pilot, "escape")
        assert "" == app.screen.filters.query  # type: ignore[attr-defined]


async def test_o_and_header_clicks_sort(store: Path, make_app: AppFactory) -> None:
    """`o` sorts by the next column; clicking a header sorts by that column."""
    app = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, NamesScreen)
        await press(pilot, "o")
        assert "p50" == screen.sort_column
        table = screen.query_one("#names")
        first = table.get_row_at(0)  # type: ignore[attr-defined]
        assert "checkout" == str(first[0])
        await press(pilot, "o", "o")
        assert "Name" == screen.sort_column
        assert "auth.verify" == str(table.get_row_at(0)[0])  # type: ignore[attr-defined]
        x = 1 + sum(
            table.columns[ColumnKey(key)].get_render_width(table)  # type: ignore[attr-defined]
            for key in ("Name", "Status", "Ok")
        )
        await pilot.click("#names", offset=(x, 0))  # the Failed header
        await pilot.pause()
        assert "Failed" == screen.sort_column
        assert "checkout" == str(table.get_row_at(0)[0])  # type: ignore[attr-defined]


async def test_enter_lists_spans_of_a_name_then_opens_the_trace(
    store: Path, make_app: AppFactory
) -> None:
    """Enter on a row lists that name's spans; Enter on one opens its trace at that span."""
    app = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, NamesScreen)
        await press(pilot, "o", "o", "o")  # LastTime -> p50 -> p99 -> Name
        await press(pilot, "down")
        await load(pilot, "enter")
        listed = app.screen
        assert isinstance(listed, SpanListScreen)
        assert "checkout" == listed.span_name
        assert 12 == len(listed.rows)
        newest = listed.rows[0]
        await load(pilot, "enter")
        trace = app.screen
        assert isinstance(trace, TraceScreen)
        assert newest.trace_id == trace.trace_id
        await press(pilot, "escape")
        assert isinstance(app.screen, SpanListScreen)
        await press(pilot, "escape")
        assert isinstance(app.screen, NamesScreen)
        await press(pilot, "escape")
        assert isinstance(app.screen, NamesScreen)


async def test_picker_appears_when_several_namespaces(
    store: Path, make_app: AppFactory, tmp_path: Path
) -> None:
    """Without --namespace the picker opens; the choice is used and remembered."""
    app = make_app(store, namespace=None)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        picker = app.screen
        assert isinstance(picker, NamespaceScreen)
        assert ["batch", "shop"] == picker.choices
        await press(pilot, "home")
        await load(pilot, "enter")
        assert "batch" == app.namespace
        assert ["nightly.report", fixture_store.LONG_NAME] == sorted(names(app))
    state = json.loads((tmp_path / "state" / "tui.json").read_text())
    assert "batch" == state["last_namespace"][str(store)]
    again = make_app(store, namespace=None)
    async with again.run_test(size=SIZE) as pilot:
        await settle(pilot)
        picker = again.screen
        assert isinstance(picker, NamespaceScreen)
        assert "batch" == picker.current
        await press(pilot, "escape")
        assert "batch" == again.namespace


async def test_n_switches_namespace(store: Path, make_app: AppFactory) -> None:
    """`n` opens the picker from the span names and switches the rows."""
    app = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "n")
        assert isinstance(app.screen, NamespaceScreen)
        await press(pilot, "up")
        await load(pilot, "enter")
        assert "batch" == app.namespace
        assert isinstance(app.screen, NamesScreen)
        assert "nightly.report" in names(app)


async def test_follow_mode_shows_new_spans(store: Path, make_app: AppFactory) -> None:
    """With `f` on, spans written while the TUI is open appear without restarting."""
    app = make_app(store, follow_interval=0.2)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "f")
        assert app.follow
        records = fixture_store.checkout_trace(20)
        fresh = [r._replace(name="refund" if r.parent_id is None else r.name) for r in records]
        fixture_store.write_store(store, fresh)
        for _ in range(50):  # bounded: 50 refreshes, about 10 s
            await asyncio.wait_for(app.wait_for_load(), LOAD_TIMEOUT)
            if "refund" in names(app):
                break
        assert "refund" in names(app)
        await press(pilot, "f")
        assert not app.follow


async def test_help_opens_and_closes(store: Path, make_app: AppFactory) -> None:
    """`?` shows the keys on any screen; Esc or `?` closes them."""
    app = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "question_mark")
        assert isinstance(app.screen, HelpScreen)
        await press(pilot, "question_mark")
        assert isinstance(app.screen, NamesScreen)
        await press(pilot, "question_mark", "escape")
        assert isinstance(app.screen, NamesScreen)


async def test_q_quits_from_the_span_names(store: Path, make_app: AppFactory) -> None:
    """`q` ends the app."""
    app = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("q")
        await pilot.pause()
        assert not app.is_running


async def test_mouse_click_opens_a_row(store: Path, make_app: AppFactory) -> None:
    """Clicking a span name row (twice: select, then open) lists that name's spans."""
    app = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.click("#names", offset=(3, 2))
        await pilot.pause()
        await loaded_after(pilot, pilot.click("#names", offset=(3, 2)))
        assert isinstance(app.screen, SpanListScreen)


async def test_q_types_into_an_input_and_quits_elsewhere(store: Path, make_app: AppFactory) -> None:
    """In the filter dialog `q` is text; on a modal without input it quits."""
    app = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "slash")
        await pilot.press("q")
        assert "q" == app.screen.query_one(Input).value
        await press(pilot, "escape", "question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("q")
        await pilot.pause()
        assert not app.is_running
