"""``BaseScreen``: what every span-tree screen shares.

- ``app`` typed as ``SpanTreeApp``, so screens reach the store (``app.source``) and the
  navigation methods without casts;
- ``reload()``: show the data again (follow mode calls it on the screen on top);
- the load bookkeeping behind the ``Loaded`` message: a screen calls ``begin_load()``
  when it asks for data and ``show_loaded()`` once that data is on its widgets; the
  message follows after the next refresh, and only for the newest load.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar, cast

from textual.screen import ModalScreen, Screen

from span_tree.tui._messages import Loaded

if TYPE_CHECKING:
    from textual.widget import Widget

    from span_tree.tui._app import SpanTreeApp

ResultT = TypeVar("ResultT")


class BaseScreen(Screen[ResultT]):
    """A screen of ``SpanTreeApp`` that loads (or shows) data and says when it is shown.

    Attributes:
        load_pending: a load was asked for and its data is not on screen yet.
        loads_shown: how many ``Loaded`` messages this screen has posted.
    """

    def __init__(
        self, name: str | None = None, id: str | None = None, classes: str | None = None
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._load_generation = 0
        self.load_pending = False
        self.loads_shown = 0

    @property
    def app(self) -> SpanTreeApp:  # type: ignore[override]
        """The running ``SpanTreeApp``."""
        return cast("SpanTreeApp", super().app)

    def reload(self) -> None:
        """Show the data again; screens that read the store override this to re-read it."""
        self.show_loaded(self.begin_load())

    def follow_changed(self) -> None:
        """Follow mode went on or off (screens that show it redraw their status line)."""

    def begin_load(self) -> int:
        """Start a load: returns its generation, to hand back to ``show_loaded``."""
        self._load_generation += 1
        self.load_pending = True
        return self._load_generation

    def is_stale(self, generation: int) -> bool:
        """Tell whether a newer load started after ``generation`` (its result is old)."""
        return generation != self._load_generation

    def show_loaded(self, generation: int, *, widget: Widget | None = None) -> None:
        """The data of load ``generation`` is on the widgets: post ``Loaded`` once
        ``widget`` (the last one filled; default the screen) has been refreshed."""
        if self.is_stale(generation):
            return
        self.load_pending = False
        # Scheduled through the filled widget's own queue: a DataTable measures its new
        # rows when that queue goes idle, so the message cannot overtake the layout.
        (widget or self).call_after_refresh(self._post_loaded, generation)

    def _post_loaded(self, generation: int) -> None:
        if self.is_stale(generation) or self.load_pending:
            return
        self.loads_shown += 1
        self.post_message(Loaded(self))


class BaseModalScreen(ModalScreen[ResultT], BaseScreen[ResultT]):
    """A dialog (drawn over the screen below) that loads data, such as a lookup."""

    # ModalScreen comes first: Textual takes a class's CSS (the see-through background)
    # from its first base only.
