"""``SpanTreeApp``: the Textual application behind ``spantree tui``."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

from textual import work
from textual.app import App
from textual.binding import Binding, BindingType
from textual.timer import Timer

from span_tree._record import FinishedSpan
from span_tree.tui._dialogs import (
    AnnotateScreen,
    Annotation,
    FilterScreen,
    FindTraceScreen,
    HelpScreen,
    NamespaceScreen,
)
from span_tree.tui._errors import ErrorGroupsScreen
from span_tree.tui._messages import Loaded, OpenSpan, OpenSpans, OpenTrace
from span_tree.tui._names import NamesScreen
from span_tree.tui._screen import BaseScreen
from span_tree.tui._source import TIME_RANGES, ErrorGroupRow, SourceError, StoreSource
from span_tree.tui._span import SpanScreen
from span_tree.tui._state import default_state_path, last_namespace, remember_namespace
from span_tree.tui._trace import TraceScreen
from span_tree.tui._traces import SpanListScreen


def _wall_clock_us() -> int:
    return time.time_ns() // 1_000


class SpanTreeApp(App[None]):
    """Browse a span-tree store: span names, their spans, traces and error groups.

    Args:
        source: the store to browse (``StoreSource.from_url(...)``).
        namespace: open this namespace directly; otherwise the only one, or a picker.
        now: the clock, in µs since the epoch (tests pass a fixed one).
        state_path: where the last namespace used is remembered (``None``: the user's
            config directory).
        follow_interval: seconds between refreshes in follow mode.
        time_range: the span names screen's first time range (a label of ``TIME_RANGES``).
    """

    CSS_PATH = "app.tcss"
    TITLE = "span-tree"
    # The footer lists every key; the palette would only repeat them and take its room.
    ENABLE_COMMAND_PALETTE = False
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("t", "find_trace", "Trace"),
        Binding("n", "pick_namespace", "Namespace"),
        Binding("g", "error_groups", "Errors"),
        Binding("f", "toggle_follow", "Follow"),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("escape", "go_back", "Back"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(
        self,
        source: StoreSource,
        *,
        namespace: str | None = None,
        now: Callable[[], int] | None = None,
        state_path: Path | None = None,
        follow_interval: float = 2.0,
        time_range: str = "24h",
    ) -> None:
        super().__init__()
        if time_range not in dict(TIME_RANGES):
            choices = ", ".join(label for label, _ in TIME_RANGES)
            raise ValueError(f"time range {time_range!r} must be one of {choices}")
        self.time_range = time_range
        self.source = source
        self.namespace = namespace or ""
        self.requested_namespace = namespace
        self.now: Callable[[], int] = now or _wall_clock_us
        self.state_path = state_path or default_state_path()
        self.follow_interval = follow_interval
        self.follow = False
        self._follow_timer: Timer | None = None
        self._follow_error: str | None = None
        self.namespaces: list[str] = []
        self.startup_error: str | None = None
        self.loads = 0
        self._load_signal = asyncio.Event()

    # -- start-up -------------------------------------------------------------------

    def on_mount(self) -> None:
        self.sub_title = self.source.label
        self._load_namespaces()
        if self.requested_namespace:
            self._warm(self.requested_namespace)

    @work(thread=True, exclusive=True, group="warm")
    def _warm(self, namespace: str) -> None:
        # Open the Store while Textual draws its first frames; errors surface later, on
        # the screen that needs the data.
        with contextlib.suppress(SourceError):
            self.source.warm(namespace)

    @work(thread=True, exclusive=True, group="namespaces")
    def _load_namespaces(self) -> None:
        try:
            found = self.source.namespaces()
            error = None
        except SourceError as failure:
            found, error = [], str(failure)
        self.call_from_thread(self._start, found, error)

    def _start(self, found: list[str], error: str | None) -> None:
        self.namespaces = found
        self.startup_error = error
        remembered = last_namespace(self.state_path, self.source.label)
        if self.requested_namespace:
            chosen = self.requested_namespace
        elif remembered in found:
            chosen = remembered or ""
        else:
            chosen = found[0] if found else "default"
        self.namespace = chosen
        self.push_screen(NamesScreen())
        if not self.requested_namespace and len(found) > 1:
            self.push_screen(NamespaceScreen(found, current=chosen), self._namespace_chosen)
        else:
            self._remember()

    def _remember(self) -> None:
        if self.namespace in self.namespaces:
            remember_namespace(self.state_path, self.source.label, self.namespace)

    # -- loads ----------------------------------------------------------------------

    def on_loaded(self, message: Loaded) -> None:
        """Count the screens' loads and wake whoever waits for one."""
        self.loads += 1
        signal, self._load_signal = self._load_signal, asyncio.Event()
        signal.set()

    async def wait_for_load(self) -> None:
        """Return when the next ``Loaded`` message has reached the app."""
        await self._load_signal.wait()

    # -- navigation: screens post messages or call these, never import each other ----

    def on_open_spans(self, message: OpenSpans) -> None:
        self.push_screen(SpanListScreen(message.name, message.filters))

    def on_open_trace(self, message: OpenTrace) -> None:
        self._open_trace(message.trace_id, message.span_id)

    @work(thread=True, exclusive=True, group="open-trace")
    def _open_trace(self, trace_id: str, span_id: str | None) -> None:
        try:
            records = self.source.trace(self.namespace, trace_id)
        except SourceError as error:
            self.call_from_thread(self.notify, str(error), severity="error")
            return
        self.call_from_thread(self.show_trace, records, span_id)

    def show_trace(self, records: list[FinishedSpan], span_id: str | None = None) -> None:
        """Show one trace's span tree (with the cursor on ``span_id`` when given)."""
        self.push_screen(TraceScreen(records, focus_span=span_id))

    def on_open_span(self, message: OpenSpan) -> None:
        self.push_screen(SpanScreen(message.span, message.trace))

    def edit_filter(self, current: str, then: Callable[[str], object]) -> None:
        """Ask for a new query filter; ``then`` gets it (not called on Esc)."""

        def chosen(query: str | None) -> None:
            if query is not None:
                then(query)

        self.push_screen(FilterScreen(current), chosen)

    def annotate(self, group: ErrorGroupRow, then: Callable[[Annotation], object]) -> None:
        """Ask how to annotate ``group``; ``then`` gets the answer (not called on Esc)."""

        def chosen(annotation: Annotation | None) -> None:
            if annotation is not None:
                then(annotation)

        self.push_screen(AnnotateScreen(group), chosen)

    # -- actions available on every screen -----------------------------------------

    def action_go_back(self) -> None:
        """Leave the current screen (the span names screen stays)."""
        if len(self.screen_stack) > 2:
            self.pop_screen()

    def action_help(self) -> None:
        """Show the keys."""
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_pick_namespace(self) -> None:
        """Choose another namespace."""
        if not isinstance(self.screen, NamespaceScreen):
            self.push_screen(
                NamespaceScreen(self.namespaces, current=self.namespace), self._namespace_chosen
            )

    def _namespace_chosen(self, namespace: str | None) -> None:
        if not namespace:
            return
        self.namespace = namespace
        self._remember()
        while len(self.screen_stack) > 2:
            self.pop_screen()
        if isinstance(self.screen, NamesScreen):
            self.screen.namespace_changed()

    def action_find_trace(self) -> None:
        """Open a trace by id."""
        if not isinstance(self.screen, FindTraceScreen):
            self.push_screen(FindTraceScreen(), self._trace_found)

    def _trace_found(self, records: list[FinishedSpan] | None) -> None:
        if records:
            self.show_trace(records)

    def action_error_groups(self) -> None:
        """List the error groups of the namespace."""
        if not isinstance(self.screen, ErrorGroupsScreen):
            self.push_screen(ErrorGroupsScreen())

    def action_toggle_follow(self) -> None:
        """Refresh the data every few seconds, or stop doing so."""
        self.follow = not self.follow
        if self.follow:
            self._follow_timer = self.set_interval(self.follow_interval, self.refresh_screen)
            self.notify("Follow mode on: new spans appear as they are written.", timeout=3)
        else:
            if self._follow_timer is not None:
                self._follow_timer.stop()
            self._follow_timer = None
            self.notify("Follow mode off.", timeout=3)
        for screen in self.screen_stack:
            if isinstance(screen, BaseScreen):
                screen.follow_changed()

    def refresh_screen(self) -> None:
        """See newly written files, then have the screen on top load its data again."""
        self._refresh_store()

    @work(thread=True, exclusive=True, group="follow")
    def _refresh_store(self) -> None:
        try:
            self.source.refresh(self.namespace)
        except SourceError as error:
            self.call_from_thread(self._follow_failed, str(error))
            return
        self._follow_error = None
        self.call_from_thread(self._reload_screen)

    def _follow_failed(self, message: str) -> None:
        if message != self._follow_error:  # say it once, not every few seconds
            self._follow_error = message
            self.notify(f"Store unreachable: {message}", severity="error", timeout=6)

    def _reload_screen(self) -> None:
        # Follow mode may have been turned off while the store was being re-listed.
        if self.follow and isinstance(self.screen, BaseScreen):
            self.screen.reload()
