"""Process-wide tracing state: the active settings, processor and test listeners.

Kept in one small module of the lowest layer: spans read it, configure writes it.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from span_tree._record import SCHEMA_VERSION, FinishedSpan
from span_tree._sanitize import DEFAULT_KEY_PATTERN

if TYPE_CHECKING:
    from span_tree._processor import BatchProcessor


# Plain classes rather than dataclasses: `dataclasses` imports `inspect` (and `ast`,
# `dis`, `tokenize`), a third of `import span_tree`'s time.


class Settings:
    """Resolved configuration; see ``span_tree.configure`` for the meaning of each."""

    def __init__(
        self,
        namespace: str = "default",
        app: str = "",
        app_version: str = "",
        host: str | None = None,
        tags: dict[str, str] | None = None,
        scrub_pattern: re.Pattern[str] = DEFAULT_KEY_PATTERN,
        schema_version: int = SCHEMA_VERSION,
        exit_timeout: float = 5.0,
    ) -> None:
        self.namespace = namespace
        self.app = app
        self.app_version = app_version
        self.host = os.uname().nodename if host is None else host
        self.tags: dict[str, str] = {} if tags is None else tags
        self.scrub_pattern = scrub_pattern
        self.schema_version = schema_version
        self.exit_timeout = exit_timeout

    def __repr__(self) -> str:
        return f"Settings({', '.join(f'{k}={v!r}' for k, v in vars(self).items())})"


class Counters:
    """Counts of what happened outside the normal path (reported by ``stats()``)."""

    def __init__(self) -> None:
        self.late_events = 0  # log records aimed at a span that had already ended
        self.listener_errors = 0
        self.internal_errors = 0  # failures of span_tree's own code on the caller's thread


class State:
    """What ``configure()`` set for this process (one instance: ``state``).

    The instance is never replaced, only its fields, so the hot path may hold it.
    """

    def __init__(self) -> None:
        self.settings = Settings()
        self.processor: BatchProcessor | None = None
        self.enabled = True
        # Called when a trace starts in this process (configure() sets it when logging
        # is captured).
        self.on_new_trace: Callable[[], None] | None = None
        # Set by span_tree.otel's context bridge: the (trace id, span id) of another
        # tracer's open span when it is newer than the given current span-tree span (or
        # there is none), else None.
        self.foreign_parent: Callable[[Any], tuple[str, str] | None] | None = None
        # The configure function, registered by the layer above (span_tree._config), so
        # the first span can configure from the environment without importing upwards.
        self.configure: Callable[[], None] | None = None


state = State()
stats = Counters()
pid = os.getpid()  # cached: read for every span record; reset in forked children
listeners: list[Callable[[FinishedSpan], None]] = []
# Re-entrant: a span made while configuring (an import logging) must not deadlock.
_configure_lock = threading.RLock()


def auto_configure() -> None:
    """Configure from the environment on first use, unless configure() ran already."""
    # Check and configure under one lock: threads starting their first spans at once
    # must not each build (and then shut down) a processor and its sinks.
    with _configure_lock:
        if state.processor is not None or state.configure is None:
            return
        state.configure()  # everything from SPANTREE_* variables and the defaults


def emit_snapshot(record: FinishedSpan) -> None:
    """Hand a ready record (a `started` version) to listeners and the processor."""
    if listeners:
        notify_listeners(record)
    processor = state.processor
    if processor is not None:
        processor.on_end(record)


def notify_listeners(record: FinishedSpan) -> None:
    for listener in list(listeners):
        try:
            listener(record)
        except Exception:
            stats.listener_errors += 1


def _after_fork() -> None:
    global pid
    pid = os.getpid()


os.register_at_fork(after_in_child=_after_fork)
