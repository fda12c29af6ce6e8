"""The newest spans of one name (under the span names screen's filters); Enter opens the trace."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.widgets import DataTable, Footer, Static

from span_tree.tui._format import clock, format_duration, truncate
from span_tree.tui._messages import OpenTrace
from span_tree.tui._screen import BaseScreen
from span_tree.tui._source import FilterChoices, SourceError, SpanRow
from span_tree.tui._widgets import RowTable, status_text

SPAN_LIMIT = 200


class SpanListScreen(BaseScreen[None]):
    """Spans called ``name`` under the span names screen's filters, newest first."""

    BINDINGS: ClassVar[list[BindingType]] = []

    def __init__(self, name: str, filters: FilterChoices) -> None:
        super().__init__()
        self.span_name = name
        self.filters = filters
        self.rows: list[SpanRow] = []

    def compose(self) -> ComposeResult:
        title = Text()
        title.append(" spans ", style="bold reverse")
        title.append(f"  {truncate(self.span_name, 80)}", style="bold")
        title.append(f"  {self.filters.describe()}")
        yield Static(title, id="status-line")
        yield RowTable(id="traces")
        yield Static("Loading…", id="message", classes="message")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for column in ("Start", "Duration", "Status", "Trace", "Root", "Error"):
            table.add_column(column, key=column)
        self.reload()

    def reload(self) -> None:
        """Load the list again (in a worker)."""
        self._load(self.begin_load())

    @work(thread=True, exclusive=True, group="traces")
    def _load(self, generation: int) -> None:
        app = self.app
        try:
            rows = app.source.spans_named(
                app.namespace,
                self.filters,
                now_us=app.now(),
                name=self.span_name,
                limit=SPAN_LIMIT,
            )
        except SourceError as error:
            app.call_from_thread(self._show, [], f"[b red]{error}[/]", generation)
            return
        app.call_from_thread(self._show, rows, "" if rows else "No span matches.", generation)

    def _show(self, rows: list[SpanRow], message: str, generation: int) -> None:
        if self.is_stale(generation):
            return
        self.rows = rows
        table = self.query_one(DataTable)
        table.clear()
        now = self.app.now()
        for row in rows:
            table.add_row(
                clock(row.start_us, now),
                Text(format_duration(row.duration_us), justify="right"),
                status_text(row.status),
                row.trace_id,
                truncate(row.root_name, 30),
                Text(truncate(row.error, 50), style="red"),
                key=f"{row.trace_id}/{row.span_id}",
            )
        self.query_one("#message", Static).update(message)
        self.show_loaded(generation, widget=table)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value is not None:
            trace_id, _, span_id = str(event.row_key.value).partition("/")
            self.post_message(OpenTrace(trace_id, span_id))
