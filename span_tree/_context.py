"""The one ContextVar holding the current span, and per-trace shared state."""

from __future__ import annotations

import itertools
import threading
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from span_tree._span import Span


class TraceState:
    """What the spans of one trace (in this process) share.

    ``counter`` hands out the causal sequence numbers of span starts and events;
    ``open_spans`` lets the root publish still-running children when it ends.
    """

    __slots__ = ("counter", "links", "lock", "open_spans", "tags", "trace_id")

    def __init__(self, trace_id: str, tags: dict[str, Any], links: tuple[str, ...] = ()) -> None:
        self.trace_id = trace_id
        self.tags = tags
        self.links = links
        self.counter = itertools.count(1)
        self.open_spans: set[Span] = set()
        self.lock = threading.Lock()


current_span_var: ContextVar[Span | None] = ContextVar("span_tree.current_span", default=None)
