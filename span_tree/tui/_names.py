"""The span names screen: one row per span name (every span, not only roots), volume and
error sparklines, filters and toggles. The first screen of the app."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Footer, Label, Sparkline, Static

from span_tree.tui._format import clock, format_duration, truncate
from span_tree.tui._messages import OpenSpans
from span_tree.tui._screen import BaseScreen
from span_tree.tui._source import (
    SPEED_FILTERS,
    STATUS_FILTERS,
    TIME_RANGES,
    FilterChoices,
    NameRow,
    SourceError,
    Timeline,
)
from span_tree.tui._widgets import RowTable, status_text

COLUMNS = ("Name", "Status", "Ok", "Failed", "LastTime", "p50", "p99")
# Sort key per column; numbers sort descending (the interesting rows first).
_SORT_KEYS: dict[str, Any] = {
    "Name": lambda row: row.name,
    "Status": lambda row: row.status,
    "Ok": lambda row: -row.ok,
    "Failed": lambda row: -row.failed,
    "LastTime": lambda row: -(row.last_us or 0),
    "p50": lambda row: -(row.p50_us or 0),
    "p99": lambda row: -(row.p99_us or 0),
}
SPARK_BUCKETS = 60
NAME_WIDTH = 60


class NamesScreen(BaseScreen[None]):
    """The namespace at a glance; Enter lists the traces of the name under the cursor."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "filter", "Filter", key_display="/"),
        Binding("e", "cycle_status", "Status"),
        Binding("s", "cycle_speed", "Speed"),
        Binding("r", "cycle_range", "Range"),
        Binding("o", "sort", "Sort"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.filters = FilterChoices()
        self.rows: list[NameRow] = []
        self.timeline = Timeline()
        self.sort_column = "LastTime"
        self.message = ""
        self.loading = False

    def compose(self) -> ComposeResult:
        yield Static("", id="status-line")
        with Horizontal(id="sparks"):
            with Vertical(classes="spark-box"):
                yield Label("volume", classes="spark-label", id="volume-label")
                yield Sparkline([], id="volume")
            with Vertical(classes="spark-box"):
                yield Label("errors", classes="spark-label", id="errors-label")
                yield Sparkline([], id="errors")
        yield RowTable(id="names")
        yield Static("", id="message", classes="message")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.filters = replace(self.filters, time_range=self.app.time_range)
        if self.app.startup_error:
            self.message = f"Cannot read the store: {self.app.startup_error}"
        self.show_status()
        self.reload()

    # -- loading ------------------------------------------------------------------

    def reload(self) -> None:
        """Load the rows and the timeline again (in a worker)."""
        self.loading = True
        self.show_status()
        self._load(self.app.namespace, self.filters, self.begin_load())

    def namespace_changed(self) -> None:
        """The app switched namespace: start from the top."""
        self.rows = []
        self.reload()

    @work(thread=True, exclusive=True, group="names")
    def _load(self, namespace: str, filters: FilterChoices, generation: int) -> None:
        app = self.app
        now = app.now()
        try:
            rows = app.source.span_names(namespace, filters, now_us=now)
        except SourceError as error:
            app.call_from_thread(self._failed, str(error), generation)
            return
        # Rows first: the table is what people read; the sparklines follow.
        app.call_from_thread(self._loaded, rows, generation)
        try:
            timeline = app.source.timeline(namespace, filters, now_us=now, buckets=SPARK_BUCKETS)
        except SourceError:
            # The rows already came, or the message explaining why not.
            app.call_from_thread(self._done, generation)
            return
        app.call_from_thread(self._timeline_loaded, timeline, generation)

    def _done(self, generation: int) -> None:
        self.show_loaded(generation, widget=self.query_one(DataTable))

    def _timeline_loaded(self, timeline: Timeline, generation: int) -> None:
        if self.is_stale(generation):
            return
        self._show_timeline(timeline)
        self._done(generation)

    def _show_timeline(self, timeline: Timeline) -> None:
        self.timeline = timeline
        # Nothing to draw (no spans, or the store is missing) is an empty line: a row of
        # zeros would be drawn as full-height bars.
        self.query_one("#volume", Sparkline).data = timeline.volume if any(timeline.volume) else []
        self.query_one("#errors", Sparkline).data = timeline.errors if any(timeline.errors) else []
        self.query_one("#volume-label", Label).update(f"volume  {sum(timeline.volume):,} spans")
        self.query_one("#errors-label", Label).update(f"errors  {sum(timeline.errors):,}")

    def _failed(self, message: str, generation: int) -> None:
        if self.is_stale(generation):
            return
        self.loading = False
        self.message = f"[b red]{message}[/]"
        self.rows = []
        self._fill()
        self._show_timeline(Timeline())
        self._done(generation)

    def _loaded(self, rows: list[NameRow], generation: int) -> None:
        if self.is_stale(generation):
            return
        self.loading = False
        self.rows = rows
        if rows:
            self.message = ""
        elif not self.app.namespaces:
            self.message = (
                "No spans in this store yet. Run [b]spantree demo[/] or instrument an app"
                " with span_tree, then press [b]f[/] to follow."
            )
        elif replace(self.filters, time_range="all") == FilterChoices(time_range="all"):
            self.message = (
                f"No spans in {self.app.namespace!r} in the last {self.filters.time_range}:"
                " press [b]r[/] for a longer time range."
            )
        else:
            self.message = "No span matches these filters."
        self._fill()

    def _fill(self) -> None:
        table = self.query_one(DataTable)
        cursor = table.cursor_row
        # Columns are re-added so the header shows which one sorts (▼).
        table.clear(columns=True)
        for column in COLUMNS:
            mark = " ▼" if column == self.sort_column else ""
            table.add_column(column + mark, key=column)
        now = self.app.now()
        primary = _SORT_KEYS[self.sort_column]
        for row in sorted(self.rows, key=lambda row: (primary(row), row.name)):
            table.add_row(
                Text(truncate(row.name, NAME_WIDTH), style="bold"),
                status_text(row.status),
                Text(str(row.ok), justify="right"),
                Text(str(row.failed), style="red" if row.failed else "", justify="right"),
                clock(row.last_us, now),
                Text(format_duration(row.p50_us), justify="right"),
                Text(format_duration(row.p99_us), justify="right"),
                key=row.name,
            )
        if self.rows:
            table.move_cursor(row=min(cursor, len(self.rows) - 1))
        self.query_one("#message", Static).update(self.message)
        self.show_status()

    def follow_changed(self) -> None:
        self.show_status()

    def show_status(self) -> None:
        """Redraw the line naming the namespace, filters and follow state."""
        line = Text()
        line.append(f" {self.app.namespace or '-'} ", style="bold reverse")
        line.append(f"  {self.filters.describe()}  sort:{self.sort_column}")
        if self.app.follow:
            line.append("  ● follow", style="bold green")
        if self.loading:
            line.append("  loading…", style="dim")
        self.query_one("#status-line", Static).update(line)

    # -- interaction --------------------------------------------------------------

    def _set_filters(self, filters: FilterChoices) -> None:
        self.filters = filters
        self.reload()

    def action_cycle_status(self) -> None:
        """Show all / failed / crashed / ok spans."""
        self._set_filters(self.filters.cycled("status", STATUS_FILTERS))

    def action_cycle_speed(self) -> None:
        """Show all / slow / fast spans."""
        self._set_filters(self.filters.cycled("speed", SPEED_FILTERS))

    def action_cycle_range(self) -> None:
        """Move to the next time range."""
        labels = tuple(label for label, _ in TIME_RANGES)
        self._set_filters(self.filters.cycled("time_range", labels))

    def action_sort(self) -> None:
        """Sort by the next column."""
        self.sort_column = COLUMNS[(COLUMNS.index(self.sort_column) + 1) % len(COLUMNS)]
        self._fill()

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        self.sort_column = str(event.column_key.value)
        self._fill()

    def action_filter(self) -> None:
        """Edit the query filter."""
        self.app.edit_filter(
            self.filters.query, lambda query: self._set_filters(replace(self.filters, query=query))
        )

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value is not None:
            self.post_message(OpenSpans(str(event.row_key.value), self.filters))
