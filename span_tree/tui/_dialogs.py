"""Small screens: namespace picker, find trace, query filter, help."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from rich.table import Table
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from span_tree._record import FinishedSpan
from span_tree.tui._source import SourceError

if TYPE_CHECKING:
    from span_tree.tui._app import SpanTreeApp


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


class FindTraceScreen(ModalScreen[list[FinishedSpan] | None]):
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
        self._look_up(text)

    @work(thread=True, exclusive=True, group="find")
    def _look_up(self, text: str) -> None:
        app: SpanTreeApp = self.app  # type: ignore[assignment]
        try:
            records = app.source.trace(app.namespace, text)
        except SourceError as error:
            self.app.call_from_thread(self._failed, str(error))
            return
        if not records:
            self.app.call_from_thread(self._failed, f"no trace with id {text!r} in this store")
            return
        self.app.call_from_thread(self.dismiss, records)

    def _failed(self, message: str) -> None:
        self.query_one("#find-message", Label).update(f"[b red]{message}[/]")

    def action_cancel(self) -> None:
        self.dismiss(None)


FILTER_HELP = (
    "Tag filters: [b]env=prod region=eu[/]   or a SQL WHERE over spans:"
    " [b]duration_us > 50000 and app = 'shop'[/]   (empty: no filter)"
)


class FilterScreen(ModalScreen[str | None]):
    """Edit the dashboard's query filter; Enter applies, Esc keeps the old one."""

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


KEYS = (
    ("t", "find a trace by KSUID, 32-hex id or unique prefix"),
    ("/", "query filter: key=value tags or a SQL WHERE over spans"),
    ("e", "cycle status: all / error / crash / ok"),
    ("s", "cycle speed: all / slow (over the name's p95) / fast"),
    ("r", "cycle time range: 24h / 7d / all / 15m / 1h"),
    ("o", "sort the dashboard by the next column (or click a header)"),
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
