"""The span view: fields, code location, tags, attributes, errors and log events."""

from __future__ import annotations

import json
from typing import ClassVar

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Button, Footer, Static

from span_tree._display import short_error_type
from span_tree._record import Event, FinishedSpan
from span_tree.sinks._render import LEVEL_STYLES
from span_tree.tui._format import clock, format_duration
from span_tree.tui._screen import BaseScreen
from span_tree.tui._widgets import status_mark

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_LEVEL_ORDER = {level: index for index, level in enumerate(LEVELS)}


class LevelButton(Button, can_focus=False):
    """A level toggle the mouse can click without stealing focus from the scroll view."""


def _section(title: str) -> Text:
    return Text(f"\n{title}", style="bold underline")


def _fields(rows: list[tuple[str, str | Text]]) -> Table:
    table = Table(box=None, show_header=False, padding=(0, 1), expand=False)
    table.add_column(style="dim", no_wrap=True)
    table.add_column(overflow="fold")
    for key, value in rows:
        table.add_row(key, value)
    return table


class SpanScreen(BaseScreen[None]):
    """Everything about one span; 1-5 (or the buttons) set the lowest event level shown."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("l", "cycle_level", "Level"),
        Binding("1", "level('DEBUG')", "Debug", show=False),
        Binding("2", "level('INFO')", "Info", show=False),
        Binding("3", "level('WARNING')", "Warning", show=False),
        Binding("4", "level('ERROR')", "Error", show=False),
        Binding("5", "level('CRITICAL')", "Critical", show=False),
    ]

    def __init__(self, span: FinishedSpan, trace: list[FinishedSpan] | None = None) -> None:
        super().__init__()
        self.span = span
        self.trace = trace or [span]
        self.min_level = "DEBUG"

    def compose(self) -> ComposeResult:
        yield Static(self._title(), id="span-title")
        with VerticalScroll(id="span-body"):
            yield Static(self._details(), id="span-details")
            with Horizontal(id="levels"):
                yield Static("events at or above ", id="levels-label")
                for level in LEVELS:
                    yield LevelButton(level.title(), id=f"level-{level}", compact=True)
            yield Static("", id="span-events")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#span-body").focus()
        self._show_events()
        self.reload()

    def reload(self) -> None:
        """The span is fixed data: say it is shown once its events have been drawn."""
        self.show_loaded(self.begin_load(), widget=self.query_one("#span-events"))

    def _title(self) -> Text:
        mark, style = status_mark(self.span)
        title = Text()
        title.append(f" {mark} ", style=style)
        title.append(self.span.name, style="bold")
        title.append(f"  {self.span.status}", style=style)
        title.append(f"  {format_duration(self.span.duration_us)}", style="cyan")
        return title

    def _details(self) -> RenderableType:
        span, now = self.span, self.app.now()
        location = f"{span.file or '?'}:{span.line or '?'}"
        if span.function:
            location += f" in {span.function}()"
        parts: list[RenderableType] = [
            _fields(
                [
                    ("trace", span.trace_id),
                    ("span", span.span_id),
                    ("parent", span.parent_id or "-"),
                    ("kind", span.kind),
                    (
                        "start",
                        f"{clock(span.start_time, now)}  (+{self._trace_offset()} into the trace)",
                    ),
                    ("end", clock(span.end_time, now)),
                    ("code", Text(location, style="cyan")),
                    ("app", f"{span.app} {span.app_version}".strip() or "-"),
                    (
                        "process",
                        f"{span.host} pid {span.pid} thread {span.thread}"
                        + (f" task {span.task}" if span.task else ""),
                    ),
                ]
            )
        ]
        parts.append(_section("Tags"))
        parts.append(
            _fields([(k, v) for k, v in sorted(span.tags.items())])
            if span.tags
            else Text("none", style="dim")
        )
        parts.append(_section("Attributes"))
        if span.attributes:
            parts.append(
                _fields(
                    [
                        (str(k), json.dumps(v, ensure_ascii=False, default=repr))
                        for k, v in span.attributes.items()
                    ]
                )
            )
        else:
            parts.append(Text("none", style="dim"))
        if span.error_type:
            parts.append(_section("Exit error"))
            parts.append(
                Text(
                    f"{short_error_type(span.error_type)}: {span.error_message or ''}",
                    style="bold red",
                )
            )
            if span.error_traceback:
                parts.append(Text(span.error_traceback.rstrip(), style="red"))
        if span.handled_errors:
            parts.append(_section(f"Handled errors ({len(span.handled_errors)})"))
            for error in span.handled_errors:
                parts.append(
                    Text.assemble(
                        (f"+{self._offset(error.time)} ", "dim"),
                        (f"{short_error_type(error.type)}: {error.message}", "yellow"),
                    )
                )
                if error.traceback:
                    parts.append(Text(error.traceback.rstrip(), style="dim"))
        parts.append(_section(f"Events ({len(span.events)})"))
        return Group(*parts)

    def _trace_offset(self) -> str:
        """How long after the trace's first span this span started."""
        first = min((s.start_time for s in self.trace), default=self.span.start_time)
        return format_duration(max(0, self.span.start_time - first))

    def _offset(self, micros: int) -> str:
        return format_duration(max(0, micros - self.span.start_time))

    def shown_events(self) -> list[Event]:
        """The span's events at or above the chosen level, in causal order."""
        threshold = _LEVEL_ORDER[self.min_level]
        shown = [e for e in self.span.events if _LEVEL_ORDER.get(e.level, 1) >= threshold]
        return sorted(shown, key=lambda e: (e.seq, e.time))

    def _show_events(self) -> None:
        shown = self.shown_events()
        table = Table(box=None, show_header=False, padding=(0, 1), expand=True)
        table.add_column(style="dim", no_wrap=True)
        table.add_column(no_wrap=True)
        table.add_column(overflow="fold", ratio=1)
        for event in shown:
            style = LEVEL_STYLES.get(event.level, "")
            message = Text(event.message, style=style)
            if event.logger:
                message.append(f"  [{event.logger}]", style="dim")
            if event.attributes:
                message.append(
                    "  " + " ".join(f"{k}={v!r}" for k, v in event.attributes.items()),
                    style="dim",
                )
            table.add_row(f"+{self._offset(event.time)}", Text(event.level, style=style), message)
        hidden = len(self.span.events) - len(shown)
        body: RenderableType = table
        if not shown:
            body = Text("no events at this level", style="dim")
        if hidden:
            body = Group(body, Text(f"{hidden} below {self.min_level.title()} hidden", style="dim"))
        self.query_one("#span-events", Static).update(body)
        for level in LEVELS:
            button = self.query_one(f"#level-{level}", LevelButton)
            button.variant = "primary" if level == self.min_level else "default"

    def action_level(self, level: str) -> None:
        """Show events at ``level`` and above."""
        self.min_level = level
        self._show_events()

    def action_cycle_level(self) -> None:
        """Raise the minimum level, wrapping from Critical back to Debug."""
        self.action_level(LEVELS[(LEVELS.index(self.min_level) + 1) % len(LEVELS)])

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id and event.button.id.startswith("level-"):
            self.action_level(event.button.id.removeprefix("level-"))
