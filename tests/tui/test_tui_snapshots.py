"""Snapshot tests of every screen: fixed data, fixed clock, fixed terminal size.

Regenerate after an intended change with ``pytest tests/tui --snapshot-update`` and look
at the SVGs in ``tests/tui/__snapshots__`` before committing them.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fixture_store
from textual.pilot import Pilot
from textual.widgets import Input
from tui_helpers import SIZE, AppFactory, load, press, settle

Steps = Callable[[Pilot[None]], Awaitable[None]]


@dataclass(frozen=True)
class Load:
    """A key after which a screen loads data: the snapshot waits for it to be shown."""

    key: str


def after(*keys: str | Load, trace: str | None = None) -> Steps:
    """Let the app load, optionally open ``trace``, then press ``keys`` in order."""

    async def run(pilot: Pilot[None]) -> None:
        await settle(pilot)
        if trace is not None:
            await press(pilot, "t")
            pilot.app.screen.query_one(Input).value = trace
            await load(pilot, "enter")
        for key in keys:
            if isinstance(key, Load):
                await load(pilot, key.key)
            else:
                await press(pilot, key)
        for field in pilot.app.screen.query(Input):
            field.cursor_blink = False  # a blinking cursor would make the snapshot flaky
        await pilot.pause()

    return run


def test_span_names(snap_compare: Any, store: Path, make_app: AppFactory) -> None:
    """The span names of the shop namespace."""
    assert snap_compare(make_app(store), run_before=after(), terminal_size=SIZE)


def test_span_names_errors_only(snap_compare: Any, store: Path, make_app: AppFactory) -> None:
    """The span names with the error toggle on, sorted by p99."""
    app = make_app(store)
    assert snap_compare(app, run_before=after(Load("e"), "o", "o"), terminal_size=SIZE)


def test_span_list(snap_compare: Any, store: Path, make_app: AppFactory) -> None:
    """The spans of payment.charge."""
    assert snap_compare(make_app(store), run_before=after(Load("enter")), terminal_size=SIZE)


def test_trace_view(snap_compare: Any, store: Path, make_app: AppFactory) -> None:
    """A failed checkout trace: tree, marks, durations and waterfall."""
    trace = fixture_store.checkout_trace_id(2)
    app = make_app(store)
    assert snap_compare(app, run_before=after("down", trace=trace), terminal_size=SIZE)


def test_span_view(snap_compare: Any, store: Path, make_app: AppFactory) -> None:
    """The failed payment span: error, traceback and events."""
    trace = fixture_store.checkout_trace_id(2)
    app = make_app(store)
    steps = after("end", Load("enter"), trace=trace)
    assert snap_compare(app, run_before=steps, terminal_size=SIZE)


def test_span_view_warning_level(snap_compare: Any, store: Path, make_app: AppFactory) -> None:
    """The root span with events at Warning and above only."""
    trace = fixture_store.checkout_trace_id(2)
    app = make_app(store)
    assert snap_compare(app, run_before=after(Load("enter"), "3", trace=trace), terminal_size=SIZE)


def test_error_groups(snap_compare: Any, store: Path, make_app: AppFactory) -> None:
    """The error groups of the shop namespace."""
    assert snap_compare(make_app(store), run_before=after(Load("g")), terminal_size=SIZE)


def test_annotate_dialog(snap_compare: Any, store: Path, make_app: AppFactory) -> None:
    """The annotate dialog over the fatal error group."""
    app = make_app(store)
    assert snap_compare(app, run_before=after(Load("g"), "down", "a"), terminal_size=SIZE)


def test_find_trace_unknown(snap_compare: Any, store: Path, make_app: AppFactory) -> None:
    """The find-trace dialog telling an id is unknown."""
    app = make_app(store)
    assert snap_compare(app, run_before=after(trace="nosuchtrace"), terminal_size=SIZE)


def test_namespace_picker(snap_compare: Any, store: Path, make_app: AppFactory) -> None:
    """The picker shown when the store has several namespaces."""
    app = make_app(store, namespace=None)
    assert snap_compare(app, run_before=after(), terminal_size=SIZE)


def test_help(snap_compare: Any, store: Path, make_app: AppFactory) -> None:
    """The keys."""
    app = make_app(store)
    assert snap_compare(app, run_before=after("question_mark"), terminal_size=SIZE)


def test_empty_store(snap_compare: Any, tmp_path: Path, make_app: AppFactory) -> None:
    """An empty store: a hint instead of rows."""
    (tmp_path / "empty").mkdir()
    app = make_app(tmp_path / "empty", namespace=None)
    assert snap_compare(app, run_before=after(), terminal_size=SIZE)


def test_store_gone(snap_compare: Any, make_app: AppFactory) -> None:
    """The span names after the store vanished: a message, no traceback."""
    # The message names the missing file, so the store needs the same path on every run.
    store = Path(tempfile.gettempdir()) / "spantree-tui-snapshot-store-gone"
    shutil.rmtree(store, ignore_errors=True)
    records = fixture_store.standard_records()
    fixture_store.write_store(store, records)
    files = sorted(store.rglob("*.parquet"))
    for index, path in enumerate(files):  # fixed file names too
        path.rename(path.with_name(f"part-{index}.parquet"))
    app = make_app(store)

    async def run(pilot: Pilot[None]) -> None:
        await settle(pilot)
        shutil.rmtree(store)
        await load(pilot, "e")

    assert snap_compare(app, run_before=run, terminal_size=SIZE)


def test_long_names(snap_compare: Any, store: Path, make_app: AppFactory) -> None:
    """Very long names in a narrow terminal: the batch span names and trace."""
    trace = fixture_store.report_trace()[0].trace_id
    app = make_app(store, namespace="batch")
    assert snap_compare(app, run_before=after("down", trace=trace), terminal_size=(80, 24))


def test_huge_trace(snap_compare: Any, huge_store: Path, make_app: AppFactory) -> None:
    """A 10,000-span trace, its stages folded, the cursor inside the third stage."""
    trace = fixture_store.huge_trace(1)[0].trace_id
    app = make_app(huge_store, namespace="huge")
    keys = ("down", "down", "down", "right", "right", "down")
    assert snap_compare(app, run_before=after(*keys, trace=trace), terminal_size=SIZE)
