"""Pilot tests of error groups and annotating them through the Store."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Input
from tui_helpers import SIZE, AppFactory, load, loaded_after, press, settle

from span_tree.analytics import Store
from span_tree.tui._dialogs import AnnotateScreen
from span_tree.tui._errors import ErrorGroupsScreen
from span_tree.tui._trace import TraceScreen


async def test_g_lists_error_groups(store: Path, make_app: AppFactory) -> None:
    """`g` lists the namespace's error groups with counts, most frequent first."""
    app = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await load(pilot, "g")
        screen = app.screen
        assert isinstance(screen, ErrorGroupsScreen)
        listed = [(g.error_type, g.count, g.handled) for g in screen.groups]
        # PaymentDeclined fails payment.charge and its root checkout: once per trace.
        assert [("TimeoutError", 12, True), ("PaymentDeclined", 3, False)] == listed
        assert all(g.first_us and g.last_us and g.sample_trace for g in screen.groups)


async def test_enter_opens_the_sample_trace(store: Path, make_app: AppFactory) -> None:
    """Enter on a group opens its sample trace."""
    app = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await load(pilot, "g")
        await press(pilot, "down")
        group = app.screen.groups[1]  # type: ignore[attr-defined]
        await load(pilot, "enter")
        screen = app.screen
        assert isinstance(screen, TraceScreen)
        assert group.sample_trace == screen.trace_id


async def test_annotate_silenced_hides_the_group(store: Path, make_app: AppFactory) -> None:
    """Annotating silenced + OK with a note is written through the Store and hides the group."""
    app = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await load(pilot, "g")
        screen = app.screen
        assert isinstance(screen, ErrorGroupsScreen)
        fingerprint = screen.groups[0].fingerprint
        await press(pilot, "a")
        dialog = app.screen
        assert isinstance(dialog, AnnotateScreen)
        await pilot.click("#status-silenced")
        await pilot.click("#level-OK")
        dialog.query_one("#note", Input).value = "replica flaps, retried"
        await loaded_after(pilot, pilot.click("#save"))
        assert isinstance(app.screen, ErrorGroupsScreen)
        assert ["PaymentDeclined"] == [g.error_type for g in screen.groups]
        await load(pilot, "i")
        assert screen.include_silenced
        shown = {g.fingerprint: (g.annotation, g.level, g.note) for g in screen.groups}
        assert ("silenced", "OK", "replica flaps, retried") == shown[fingerprint]
    with Store(str(store)) as reader:  # what `spantree errors` reads
        row = reader.errors(namespace="shop").filter(fingerprint=fingerprint).to_dicts()[0]
    assert ("silenced", "OK", "replica flaps, retried") == (
        row["status"],
        row["level"],
        row["note"],
    )


async def test_annotate_crash_by_keyboard(store: Path, make_app: AppFactory) -> None:
    """The dialog works from the keyboard: note + Enter saves crash/WARN by default."""
    app = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await load(pilot, "g")
        await press(pilot, "down", "a")
        assert isinstance(app.screen, AnnotateScreen)
        await pilot.press(*"bad")
        await load(pilot, "enter")
        screen = app.screen
        assert isinstance(screen, ErrorGroupsScreen)
        group = next(g for g in screen.groups if g.error_type == "PaymentDeclined")
        assert ("crash", "WARN", "bad") == (group.annotation, group.level, group.note)
        await press(pilot, "escape")
        await load(pilot, "e", "e")  # span names status filter: crash
        names = sorted(row.name for row in app.screen.rows)  # type: ignore[attr-defined]
        assert ["checkout", "payment.charge"] == names


async def test_escape_cancels_annotation(store: Path, make_app: AppFactory) -> None:
    """Esc closes the dialog without writing anything."""
    app = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await load(pilot, "g")
        await press(pilot, "a", "escape")
        screen = app.screen
        assert isinstance(screen, ErrorGroupsScreen)
        assert [None, None] == [g.note for g in screen.groups]
        assert not (store / "annotations").exists()
