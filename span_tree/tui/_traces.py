"""The newest spans of one name (under the dashboard's filters); Enter opens the trace."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from span_tree._record import FinishedSpan
from span_tree.tui._dashboard import RowTable, status_text
from span_tree.tui._format import clock, format_duration, truncate
from span_tree.tui._source import Filters, SourceError, SpanRow

if TYPE_CHECKING:
    from span_tree.tui._app import SpanTreeApp

SPAN_LIMIT = 200


class SpanListScreen(Screen[None]):
    """Spans called ``name`` under the dashboard's filters, newest first."""

    BINDINGS: ClassVar[list[BindingType]] = []

    def __init__(self, name: str, filters: Filters) -> None:
        super().__init__()
        self.span_name = name
        self.filters = filters
        self.rows: list[SpanRow] = []

    @property
    def tui(self) -> SpanTreeApp:
        return self.app  # type: ignore[return-value]

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
        self._load()

    @work(thread=True, exclusive=True, group="traces")
    def _load(self) -> None:
        app = self.tui
        try:
            rows = app.source.spans_named(
                app.namespace,
                self.filters,
                now_us=app.now(),
                name=self.span_name,
                limit=SPAN_LIMIT,
            )
        except SourceError as error:
            app.call_from_thread(self._show, [], f"[b red]{error}[/]")
            return
        app.call_from_thread(self._show, rows, "" if rows else "No span matches.")

    def _show(self, rows: list[SpanRow], message: str) -> None:
        self.rows = rows
        table = self.query_one(DataTable)
        table.clear()
        now = self.tui.now()
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

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value is not None:
            trace_id, _, span_id = str(event.row_key.value).partition("/")
            self._open(trace_id, span_id)

    @work(thread=True, exclusive=True, group="open-trace")
    def _open(self, trace_id: str, span_id: str) -> None:
        app = self.tui
        try:
            records: list[FinishedSpan] = app.source.trace(app.namespace, trace_id)
        except SourceError as error:
            app.call_from_thread(self.query_one("#message", Static).update, f"[b red]{error}[/]")
            return
        app.call_from_thread(app.open_trace, records, span_id)
