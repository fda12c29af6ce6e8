"""Error groups: counts, first/last seen, sample trace; annotate a group."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Footer, Static

from span_tree._display import short_error_type
from span_tree.tui._format import ago, truncate
from span_tree.tui._messages import OpenTrace
from span_tree.tui._screen import BaseScreen
from span_tree.tui._source import ErrorGroupRow, SourceError
from span_tree.tui._widgets import RowTable

if TYPE_CHECKING:
    from span_tree.tui._dialogs import Annotation

_LEVEL_STYLES = {"OK": "green", "WARN": "yellow", "ALERT": "bold red"}


class ErrorGroupsScreen(BaseScreen[None]):
    """The namespace's error groups, most frequent first; silenced ones only on request."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "annotate", "Annotate"),
        Binding("i", "toggle_silenced", "Incl. silenced"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.include_silenced = False
        self.groups: list[ErrorGroupRow] = []

    def compose(self) -> ComposeResult:
        yield Static("", id="status-line")
        yield RowTable(id="groups")
        yield Static("Loading…", id="message", classes="message")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for column in (
            "Occurrences",
            "Handled",
            "Error",
            "Location",
            "First",
            "Last",
            "Mark",
            "Level",
            "Note",
        ):
            table.add_column(column, key=column)
        self.show_status()
        self.reload()

    def follow_changed(self) -> None:
        self.show_status()

    def show_status(self) -> None:
        """Redraw the title line."""
        line = Text()
        line.append(" error groups ", style="bold reverse")
        line.append(f"  {self.app.namespace}")
        line.append("  silenced shown" if self.include_silenced else "  silenced hidden (i)")
        if self.app.follow:
            line.append("  ● follow", style="bold green")
        self.query_one("#status-line", Static).update(line)

    def reload(self) -> None:
        """Load the groups again (in a worker)."""
        self._load(self.include_silenced, self.begin_load())

    @work(thread=True, exclusive=True, group="errors")
    def _load(self, include_silenced: bool, generation: int) -> None:
        app = self.app
        try:
            groups = app.source.errors(app.namespace, include_silenced=include_silenced)
        except SourceError as error:
            app.call_from_thread(self._show, [], f"[b red]{error}[/]", generation)
            return
        message = "" if groups else "No errors. Nice."
        app.call_from_thread(self._show, groups, message, generation)

    def _show(self, groups: list[ErrorGroupRow], message: str, generation: int) -> None:
        if self.is_stale(generation):
            return
        self.groups = groups
        table = self.query_one(DataTable)
        cursor = table.cursor_row
        table.clear()
        now = self.app.now()
        for group in groups:
            table.add_row(
                Text(str(group.count), justify="right", style="bold"),
                Text("handled", style="yellow") if group.handled else Text("fatal", style="red"),
                Text(
                    truncate(f"{short_error_type(group.error_type)}: {group.message}", 44),
                    style="yellow" if group.handled else "red",
                ),
                truncate(group.location, 30),
                ago(group.first_us, now),
                ago(group.last_us, now),
                "" if group.annotation in (None, "open") else str(group.annotation),
                Text(group.level or "", style=_LEVEL_STYLES.get(group.level or "", "")),
                truncate(group.note or "", 30),
                key=group.fingerprint,
            )
        if groups:
            table.move_cursor(row=min(cursor, len(groups) - 1))
        self.query_one("#message", Static).update(message)
        self.show_status()
        self.show_loaded(generation, widget=table)

    def _current(self) -> ErrorGroupRow | None:
        table = self.query_one(DataTable)
        if not self.groups or not 0 <= table.cursor_row < len(self.groups):
            return None
        return self.groups[table.cursor_row]

    def action_toggle_silenced(self) -> None:
        """Show or hide silenced groups."""
        self.include_silenced = not self.include_silenced
        self.show_status()
        self.reload()

    def action_annotate(self) -> None:
        """Annotate the group under the cursor."""
        group = self._current()
        if group is None:
            self.notify("No error group selected.", severity="warning")
            return
        self.app.annotate(group, lambda annotation: self._annotate(group.fingerprint, annotation))

    @work(thread=True, exclusive=True, group="annotate")
    def _annotate(self, fingerprint: str, annotation: Annotation) -> None:
        app = self.app
        try:
            app.source.annotate(
                app.namespace,
                fingerprint,
                status=annotation.status,
                level=annotation.level,
                note=annotation.note,
            )
        except SourceError as error:
            app.call_from_thread(self.notify, f"Not saved: {error}", severity="error")
            return
        app.call_from_thread(self.reload)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open_sample()

    def action_open_sample(self) -> None:
        """Open the sample trace of the group under the cursor."""
        group = self._current()
        if group is not None and group.sample_trace:
            self.post_message(OpenTrace(group.sample_trace))
