"""span-tree: record every unit of work as a tree of spans, keep it as Parquet.

``import span_tree`` loads the standard library only; sinks, analytics, the TUI and the
CLI import their heavy dependencies when first used.
"""

from span_tree._config import configure, flush, shutdown, stats
from span_tree._ids import new_span_id, new_trace_id, trace_id_from_w3c, w3c_trace_id
from span_tree._logging import SpanLogger, get_logger
from span_tree._record import Event, FinishedSpan, HandledError
from span_tree._span import Span, SpanTreeWarning, current_span, set_tags, span, wrap
from span_tree.api import getLogger, logger_log_extra, new_span

__version__ = "0.1.0"

__all__ = [
    "Event",
    "FinishedSpan",
    "HandledError",
    "Span",
    "SpanLogger",
    "SpanTreeWarning",
    "__version__",
    "configure",
    "current_span",
    "flush",
    "getLogger",
    "get_logger",
    "logger_log_extra",
    "new_span",
    "new_span_id",
    "new_trace_id",
    "set_tags",
    "shutdown",
    "span",
    "stats",
    "trace_id_from_w3c",
    "w3c_trace_id",
    "wrap",
]
