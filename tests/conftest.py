"""Shared fixtures: every test starts with tracing reset to an in-memory sink."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator

import pytest

# Failures of span_tree's own code are absorbed on the caller's thread in production;
# under our tests they raise, so that such bugs stay visible (tests of the guard unset it).
os.environ.setdefault("SPANTREE_RAISE_INTERNAL_ERRORS", "1")
# Readers remember bad files and running spans in the user's cache: not ours under test.
os.environ.setdefault("SPANTREE_CACHE_DIR", tempfile.mkdtemp(prefix="spantree-test-cache-"))

import span_tree
from span_tree import _runtime, _threads
from span_tree.sinks.memory import MemorySink


@pytest.fixture(autouse=True)
def reset_tracing() -> Iterator[MemorySink]:
    """Configure span_tree with only a memory sink; undo patches afterwards."""
    sink = MemorySink()
    span_tree.configure(sinks=[sink], console=False, jsonl=False, store=None, schedule_delay=0.05)
    yield sink
    span_tree.shutdown(timeout=5)
    _threads.unpatch_threads()
    _runtime.listeners.clear()
    _runtime.state.processor = None
    _runtime.state.enabled = True


@pytest.fixture
def memory_sink(reset_tracing: MemorySink) -> MemorySink:
    """The memory sink every test's spans go to (call span_tree.flush() first)."""
    return reset_tracing
