"""Carry the current span into threads started inside it.

Threads do not inherit ContextVars. ``threading.Thread`` remembers the span current at
``start()`` and makes it current in the new thread; ``ThreadPoolExecutor.submit`` binds
each submitted callable to the submitter's span (pool threads outlive any one span).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from span_tree._context import current_span_var

_original_start = threading.Thread.start
_original_bootstrap_inner = threading.Thread._bootstrap_inner  # type: ignore[attr-defined]
_original_submit = ThreadPoolExecutor.submit
_patched = False


def _start(self: threading.Thread) -> None:
    self._span_tree_parent = current_span_var.get()  # type: ignore[attr-defined]
    _original_start(self)


def _bootstrap_inner(self: threading.Thread) -> None:
    parent = getattr(self, "_span_tree_parent", None)
    if parent is not None:
        current_span_var.set(parent)
    _original_bootstrap_inner(self)


def _submit(self: ThreadPoolExecutor, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
    parent = current_span_var.get()
    if parent is None:
        return _original_submit(self, fn, *args, **kwargs)

    def run_in_span() -> Any:
        token = current_span_var.set(parent)
        try:
            return fn(*args, **kwargs)
        finally:
            current_span_var.reset(token)

    # submit() may start the pool's worker threads; they outlive this span and must not
    # inherit it (later work submitted outside any span would land in this trace).
    outside = current_span_var.set(None)
    try:
        return _original_submit(self, run_in_span)
    finally:
        current_span_var.reset(outside)


def patch_threads() -> None:
    """Install the patches (idempotent)."""
    global _patched
    if _patched:
        return
    threading.Thread.start = _start  # type: ignore[method-assign]
    threading.Thread._bootstrap_inner = _bootstrap_inner  # type: ignore[attr-defined]
    ThreadPoolExecutor.submit = _submit  # type: ignore[method-assign, assignment]
    _patched = True


def unpatch_threads() -> None:
    """Remove the patches (idempotent)."""
    global _patched
    if not _patched:
        return
    threading.Thread.start = _original_start  # type: ignore[method-assign]
    threading.Thread._bootstrap_inner = _original_bootstrap_inner  # type: ignore[attr-defined]
    ThreadPoolExecutor.submit = _original_submit  # type: ignore[method-assign]
    _patched = False


def threads_patched() -> bool:
    """Tell whether the thread patches are installed."""
    return _patched
