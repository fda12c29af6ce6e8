"""Error groups: counts, first/last seen, sample trace; annotate a group."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, DataTable, Footer, Input, Label, RadioButton, RadioSet, Static

from span_tree._display import short_error_type
from span_tree.tui._dashboard import RowTable
from span_tree.tui._format import ago, truncate
from span_tree.tui._source import ErrorGroupRow, SourceError

if TYPE_CHECKING:
    from span_tree.tui._app import SpanTreeApp

ANNOTATION_STATUSES = ("crash", "silenced", "open")
ANNOTATION_LEVELS = ("OK", "WARN", "ALERT")
_LEVEL_STYLES = {"OK": "green", "WARN": "yellow", "ALERT": "bold red"}


@dataclass(frozen=True)
class Annotation:
    """What the annotate dialog returns."""

    status: str
    level: str
    note: str


class AnnotateScreen(ModalScreen[Annotation | None]):
    """Mark an error group crash/silenced and OK/WARN/ALERT, with a note."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Back")]

    def __init__(self, group: ErrorGroupRow) -> None:
        super().__init__()
        self.group = group

    def compose(self) -> ComposeResult:
        # An unannotated ("open") group is most often being marked as a crash.
        status = (
            self.group.annotation if self.group.annotation in ("crash", "silenced") else "crash"
        )
        level = self.group.level if self.group.level in ANNOTATION_LEVELS else "WARN"
        with Vertical(classes="dialog wide"):
            yield Label("Annotate error group", classes="dialog-title")
            yield Label(
                truncate(f"{short_error_type(self.group.error_type)}: {self.group.message}", 90)
            )
            with Horizontal(classes="choices"):
                with RadioSet(id="status"):
                    for choice in ANNOTATION_STATUSES:
                        yield RadioButton(choice, value=choice == status, id=f"status-{choice}")
                with RadioSet(id="level"):
                    for choice in ANNOTATION_LEVELS:
                        yield RadioButton(choice, value=choice == level, id=f"level-{choice}")
            yield Input(value=self.group.note or "", placeholder="note (Enter saves)", id="note")
            with Horizontal(classes="buttons"):
                yield Button("Save", variant="primary", id="save")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#note", Input).focus()

    def _chosen(self, radio_set: str, choices: tuple[str, ...]) -> str:
        index = self.query_one(f"#{radio_set}", RadioSet).pressed_index
        return choices[index] if index >= 0 else choices[0]

    def _save(self) -> None:
        self.dismiss(
            Annotation(
                status=self._chosen("status", ANNOTATION_STATUSES),
                level=self._chosen("level", ANNOTATION_LEVELS),
                note=self.query_one("#note", Input).value.strip(),
            )
        )

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self._save()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "save":
            self._save()
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ErrorGroupsScreen(Screen[None]):
    """The namespace's error groups, most frequent first; silenced ones only on request."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "annotate", "Annotate"),
        Binding("i", "toggle_silenced", "Incl. silenced"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.include_silenced = False
        self.groups: list[ErrorGroupRow] = []

    @property
    def tui(self) -> SpanTreeApp:
        return self.app  # type: ignore[return-value]

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

    def show_status(self) -> None:
        """Redraw the title line."""
        line = Text()
        line.append(" error groups ", style="bold reverse")
        line.append(f"  {self.tui.namespace}")
        line.append("  silenced shown" if self.include_silenced else "  silenced hidden (i)")
        if self.tui.follow:
            line.append("  ● follow", style="bold green")
        self.query_one("#status-line", Static).update(line)

    def reload(self) -> None:
        """Load the groups again (in a worker)."""
        self._load(self.include_silenced)

    @work(thread=True, exclusive=True, group="errors")
    def _load(self, include_silenced: bool) -> None:
        app = self.tui
        try:
            groups = app.source.errors(app.namespace, include_silenced=include_silenced)
        except SourceError as error:
            app.call_from_thread(self._show, [], f"[b red]{error}[/]")
            return
        app.call_from_thread(self._show, groups, "" if groups else "No errors. Nice.")

    def _show(self, groups: list[ErrorGroupRow], message: str) -> None:
        self.groups = groups
        table = self.query_one(DataTable)
        cursor = table.cursor_row
        table.clear()
        now = self.tui.now()
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

        def save(annotation: Annotation | None) -> None:
            if annotation is not None:
                self._annotate(group.fingerprint, annotation)

        self.app.push_screen(AnnotateScreen(group), save)

    @work(thread=True, exclusive=True, group="annotate")
    def _annotate(self, fingerprint: str, annotation: Annotation) -> None:
        app = self.tui
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
            self._open(group.sample_trace)

    @work(thread=True, exclusive=True, group="open-trace")
    def _open(self, trace_id: str) -> None:
        app = self.tui
        try:
            records = app.source.trace(app.namespace, trace_id)
        except SourceError as error:
            app.call_from_thread(self.notify, str(error), severity="error")
            return
        app.call_from_thread(app.open_trace, records)
