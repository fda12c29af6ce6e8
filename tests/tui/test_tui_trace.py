"""Pilot tests of find trace, the trace view (tree + arrows) and the span view."""

from __future__ import annotations

import io
from pathlib import Path

import fixture_store
from rich.console import Console
from textual.widgets import Input, Label, Static
from tui_helpers import SIZE, AppFactory, load, press, settle

from span_tree._ids import w3c_trace_id
from span_tree.tui._dialogs import FindTraceScreen
from span_tree.tui._format import format_duration
from span_tree.tui._names import NamesScreen
from span_tree.tui._span import SpanScreen
from span_tree.tui._trace import SpanTree, TraceScreen


async def find(pilot: object, text: str) -> None:
    """Open the find-trace dialog, type ``text`` and submit it."""
    await press(pilot, "t")  # type: ignore[arg-type]
    app = pilot.app  # type: ignore[attr-defined]
    assert isinstance(app.screen, FindTraceScreen)
    app.screen.query_one(Input).value = text
    await load(pilot, "enter")  # type: ignore[arg-type]


def cursor_name(app: object) -> str:
    tree = app.screen.query_one(SpanTree)  # type: ignore[attr-defined]
    return str(tree.cursor_node.data.span.name)


async def test_t_finds_a_trace_by_ksuid_hex_and_prefix(store: Path, make_app: AppFactory) -> None:
    """`t` opens a trace by full KSUID, by its 32-hex W3C id and by a unique prefix."""
    trace_id = fixture_store.checkout_trace_id(4)
    app = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        for text in (trace_id, w3c_trace_id(trace_id), trace_id[:12]):
            await find(pilot, text)
            screen = app.screen
            assert isinstance(screen, TraceScreen)
            assert trace_id == screen.trace_id
            assert 5 == len(screen.spans)
            await press(pilot, "escape")
            assert isinstance(app.screen, NamesScreen)


async def test_unknown_trace_id_says_so(store: Path, make_app: AppFactory) -> None:
    """An unknown id keeps the dialog open with a message; Esc closes it."""
    app = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await find(pilot, "zzzzzzzzzzzz")
        screen = app.screen
        assert isinstance(screen, FindTraceScreen)
        message = str(screen.query_one("#find-message", Label).render())
        assert "no trace" in message
        await press(pilot, "escape")
        assert isinstance(app.screen, NamesScreen)


async def test_ambiguous_prefix_says_so(store: Path, make_app: AppFactory) -> None:
    """A prefix shared by several traces is refused with the candidates' count; the
    message wraps inside the dialog instead of being cut at its edge."""
    app = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await find(pilot, fixture_store.checkout_trace_id(4)[:2])
        screen = app.screen
        assert isinstance(screen, FindTraceScreen)
        label = screen.query_one("#find-message", Label)
        text = str(label.render())
        assert "matches" in text
        dialog = screen.query_one(".dialog")
        assert label.region.right <= dialog.content_region.right
        assert label.size.height * label.size.width >= len(text)
        assert label.size.height > 1


async def test_arrows_move_through_the_tree(store: Path, make_app: AppFactory) -> None:
    """Down/up move between spans, left goes to the parent, right to the first child."""
    app = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await find(pilot, fixture_store.checkout_trace_id(2))
        assert "checkout" == cursor_name(app)
        await press(pilot, "down")
        assert "auth.verify" == cursor_name(app)
        await press(pilot, "down", "down", "down")
        assert "payment.charge" == cursor_name(app)
        await press(pilot, "up")
        assert "db.query" == cursor_name(app)
        await press(pilot, "left")
        assert "checkout" == cursor_name(app)
        await press(pilot, "left")  # an open node folds
        tree = app.screen.query_one(SpanTree)
        assert not tree.cursor_node.is_expanded  # type: ignore[union-attr]
        await press(pilot, "right")  # a folded node opens
        assert tree.cursor_node.is_expanded  # type: ignore[union-attr]
        await press(pilot, "right")  # then goes to its first child
        assert "auth.verify" == cursor_name(app)


async def test_enter_opens_the_span_view(store: Path, make_app: AppFactory) -> None:
    """Enter on a span shows its details: error, traceback, events."""
    app = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await find(pilot, fixture_store.checkout_trace_id(2))
        await press(pilot, "end")
        await load(pilot, "enter")
        screen = app.screen
        assert isinstance(screen, SpanScreen)
        assert "payment.charge" == screen.span.name
        assert "PaymentDeclined" == screen.span.error_type
        await press(pilot, "escape")
        assert isinstance(app.screen, TraceScreen)


async def test_span_view_start_is_offset_from_the_trace(store: Path, make_app: AppFactory) -> None:
    """The span view's start says how long after the trace's first span it began."""
    app = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await find(pilot, fixture_store.checkout_trace_id(2))
        await press(pilot, "end")
        await load(pilot, "enter")
        screen = app.screen
        assert isinstance(screen, SpanScreen)
        first = min(span.start_time for span in screen.trace)
        offset = format_duration(screen.span.start_time - first)
        assert screen.span.start_time > first
        console = Console(width=120, record=True, file=io.StringIO())
        console.print(screen.query_one("#span-details", Static).content)
        assert f"(+{offset} into the trace)" in console.export_text()


async def test_span_view_level_toggle(store: Path, make_app: AppFactory) -> None:
    """1-5 and `l` set the lowest event level shown; the buttons do the same by mouse."""
    app = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await find(pilot, fixture_store.checkout_trace_id(2))
        await load(pilot, "enter")
        screen = app.screen
        assert isinstance(screen, SpanScreen)
        assert 3 == len(screen.shown_events())
        await press(pilot, "2")
        assert "INFO" == screen.min_level
        assert 2 == len(screen.shown_events())
        await press(pilot, "l")
        assert "WARNING" == screen.min_level
        assert ["payment slower than usual"] == [e.message for e in screen.shown_events()]
        await press(pilot, "l", "l")
        assert "CRITICAL" == screen.min_level
        assert [] == screen.shown_events()
        await press(pilot, "l")
        assert "DEBUG" == screen.min_level
        await pilot.click("#level-ERROR")
        await pilot.pause()
        assert "ERROR" == screen.min_level


async def test_span_view_scrolls(store: Path, make_app: AppFactory) -> None:
    """PgDn scrolls a span whose details are longer than the screen."""
    app = make_app(store, namespace="batch")
    async with app.run_test(size=(80, 16)) as pilot:
        await settle(pilot)
        await find(pilot, fixture_store.report_trace()[0].trace_id)
        await load(pilot, "enter")
        screen = app.screen
        assert isinstance(screen, SpanScreen)
        body = screen.query_one("#span-body")
        assert 0 == body.scroll_y
        await press(pilot, "pagedown")
        await pilot.pause(0.3)
        assert body.scroll_y > 0
        await press(pilot, "down")
        await pilot.press("q")
        await pilot.pause()
        assert not app.is_running


async def test_huge_trace_opens_and_moves(huge_store: Path, make_app: AppFactory) -> None:
    """A 10,000-span trace opens with its stages folded; the cursor moves and opens spans."""
    app = make_app(huge_store, namespace="huge")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await find(pilot, fixture_store.huge_trace(1)[0].trace_id)
        screen = app.screen
        assert isinstance(screen, TraceScreen)
        assert 10_000 == len(screen.spans)
        tree = screen.query_one(SpanTree)
        assert 101 == tree.last_line + 1  # root + 100 folded stages
        await press(pilot, "down", "down", "right", "right")
        assert "row.insert" == cursor_name(app)
        await press(pilot, "pagedown", "end", "home")
        await load(pilot, "enter")
        assert isinstance(app.screen, SpanScreen)
