"""Widgets and cell renderers more than one screen uses: the row table and status marks."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.widgets import DataTable

from span_tree._display import status_mark as display_status_mark
from span_tree._record import STATUS_FAILED, STATUS_STARTED, FinishedSpan
from span_tree.sinks._render import STATUS_STYLES


class RowTable(DataTable[Any]):
    """A row-cursor ``DataTable`` whose Enter is shown in the footer."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("enter", "select_cursor", "Open")]

    def __init__(self, *, id: str) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)


def status_text(status: str) -> Text:
    """A span or name status, coloured."""
    styles = {"failed": "bold red", "error": "bold red", "succeeded": "green", "ok": "green"}
    return Text(status, style=styles.get(status, "yellow"))


def status_mark(span: FinishedSpan) -> tuple[str, str]:
    """The mark and style of a span: the status mark every face draws, except ``!`` for a
    span that succeeded after handling errors (the TUI's trees show where those are)."""
    if span.status not in (STATUS_FAILED, STATUS_STARTED) and span.handled_errors:
        return "!", "yellow"
    return display_status_mark(span.status), STATUS_STYLES.get(span.status, "green")
