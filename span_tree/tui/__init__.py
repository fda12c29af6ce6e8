"""The terminal UI (``spantree tui``): a Textual app over ``span_tree.analytics.Store``.

Imports Textual, so ``import span_tree`` never imports this package.
"""

from __future__ import annotations

from span_tree.tui._app import SpanTreeApp
from span_tree.tui._source import FilterChoices, SourceError, StoreSource

__all__ = ["FilterChoices", "SourceError", "SpanTreeApp", "StoreSource"]
