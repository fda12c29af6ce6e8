"""Dialogs: namespace picker, find trace, query filter, annotate an error group, help."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rich.table import Table
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList, RadioButton, RadioSet, Static
from textual.widgets.option_list import Option

from span_tree._display import short_error_type
from span_tree._record import FinishedSpan
from span_tree.tui._format import truncate
from span_tree.tui._screen import BaseModalScreen
from span_tree.tui._source import ErrorGroupRow, SourceError

ANNOTATION_STATUSES = ("crash", "silenced", "open")
ANNOTATION_LEVELS = ("OK", "WARN", "ALERT")


class NamespaceScreen(ModalScreen[str | None]):
    """Pick one of the store's namespaces; Enter takes it, Esc keeps the current one."""

    # A modal screen hides the app's bindings, so quitting is repeated here.
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Back"),
        Binding("q", "app.quit", "Quit"),
    ]

    def __init__(self, namespaces: list[str], *, current: str) -> None:
        super().__init__()
        self.choices = namespaces
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Namespace", classes="dialog-title")
            if self.choices:
                yield OptionList(*[Option(name, id=name) for name in self.choices])
            else:
                yield Label("This store has no namespaces yet (no spans written).")

    def on_mount(self) -> None:
        if self.current in self.choices:
            self.query_one(OptionList).highlighted = self.choices.index(self.current)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)


class FindTraceScreen(BaseModalScreen[list[FinishedSpan] | None]):
    """Ask for a trace id (KSUID, 32-hex W3C id or unique prefix) and look it up."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Back")]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Find trace", classes="dialog-title")
            yield Input(placeholder="KSUID, 32-hex trace id or a unique prefix", id="trace-id")
            yield Label("", id="find-message", classes="message")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if not text:
            self.query_one("#find-message", Label).update("Type a trace id.")
            return
        self.query_one("#find-message", Label).update(f"Looking up {text}…")
        self._look_up(text, self.begin_load())

    @work(thread=True, exclusive=True, group="find")
    def _look_up(self, text: str, generation: int) -> None:
        app = self.app
        try:
            records = app.source.trace(app.namespace, text)
        except SourceError as error:
            app.call_from_thread(self._failed, str(error), generation)
            return
        if not records:
            message = f"no trace with id {text!r} in this store"
            app.call_from_thread(self._failed, message, generation)
            return
        # The trace screen that follows says when it is shown.
        app.call_from_thread(self.dismiss, records)

    def _failed(self, message: str, generation: int) -> None:
        label = self.query_one("#find-message", Label)
        label.update(f"[b red]{message}[/]")
        self.show_loaded(generation, widget=label)

    def action_cancel(self) -> None:
        self.dismiss(None)


FILTER_HELP = (
    "Tag filters: [b]env=prod region=eu[/]   or a SQL WHERE over spans:"
    " [b]duration_us > 50000 and app = 'shop'[/]   (empty: no filter)"
)


class FilterScreen(ModalScreen[str | None]):
    """Edit the query filter of the span names; Enter applies, Esc keeps the old one."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Back")]

    def __init__(self, current: str) -> None:
        super().__init__()
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Label("Query filter", classes="dialog-title")
            yield Input(value=self.current, placeholder="env=prod  or  status = 'failed'")
            yield Label(FILTER_HELP, classes="hint")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip())

    def action_cancel(self) -> None:
        self.dismiss(None)


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


KEYS = (
    ("t", "find a trace by KSUID, 32-hex id or unique prefix"),
    ("/", "query filter: key=value tags or a SQL WHERE over spans"),
    ("e", "cycle status: all / error / crash / ok"),
    ("s", "cycle speed: all / slow (over the name's p95) / fast"),
    ("r", "cycle time range: 24h / 7d / all / 15m / 1h"),
    ("o", "sort the span names by the next column (or click a header)"),
    ("n", "pick a namespace"),
    ("g", "error groups;  a annotate,  i include silenced"),
    ("f", "follow mode: reload every few seconds"),
    ("enter", "open the row / span under the cursor"),
    ("← →", "trace view: collapse / parent, expand / first child"),
    ("space", "trace view: fold / unfold the span under the cursor"),
    ("1-5, l", "span view: minimum event level Debug … Critical"),
    ("esc", "back"),
    ("?", "this help"),
    ("q", "quit (in a text field: Esc first, or ctrl+q)"),
)


class HelpScreen(ModalScreen[None]):
    """The keys, on any screen."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Back"),
        Binding("question_mark", "close", "Close", key_display="?"),
        Binding("q", "app.quit", "Quit"),
    ]

    def compose(self) -> ComposeResult:
        table = Table(box=None, show_header=False, padding=(0, 2))
        table.add_column(style="bold cyan", no_wrap=True)
        table.add_column()
        for key, text in KEYS:
            table.add_row(key, text)
        with Vertical(classes="dialog wide"):
            yield Label("Keys", classes="dialog-title")
            yield Static(table)

    def action_close(self) -> None:
        self.dismiss(None)
