"""The API of span-tree 0.0.4, unchanged in shape, over the one span implementation.

Code written against 0.0.4 (``from span_tree.api import span, SpanLogger, log_extra,
as_log_extra``) runs as it is and records into today's model: these names are thin
aliases, not a second span machinery.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, Protocol

from span_tree._logging import SpanLogger, get_logger, log_extra
from span_tree._span import Span
from span_tree._span import span as _span

__all__ = [
    "LogExtra",
    "SpanLogger",
    "as_log_extra",
    "getLogger",
    "get_logger",
    "log_extra",
    "logger_log_extra",
    "new_span",
    "span",
]

getLogger = get_logger  # 0.0.4 offered both spellings


class LogExtra(Protocol):
    """``log_extra`` bound to a logger: ``(msg="", level=INFO, *, ref_src, ref_dest, **attrs)``."""

    def __call__(
        self,
        msg: str = "",
        level: int = logging.INFO,
        /,
        *,
        ref_src: bool = False,
        ref_dest: str = "",
        **attributes: Any,
    ) -> str | None: ...


def as_log_extra(logger: logging.Logger) -> LogExtra:
    """``log_extra`` bound to ``logger``."""
    bound: LogExtra = functools.partial(log_extra, logger)
    return bound


def logger_log_extra(name: str) -> tuple[logging.Logger, LogExtra]:
    """The logger called ``name`` and a ``log_extra`` bound to it."""
    logger = logging.getLogger(name)
    return logger, as_log_extra(logger)


def new_span(name: Any, force_new_trace: bool = False, **attributes: Any) -> Span:
    """Open a span (``with new_span("job"):``); ``force_new_trace`` links a new trace."""
    return Span(name, attributes, force_new_trace=force_new_trace)


def span(name: Any = "", force_new_trace: bool = False, **attributes: Any) -> Any:
    """Decorate a function as a span: ``@span``, ``@span("name")``, ``@span("n", True)``."""
    decorated: Callable[..., Any] | Span = _span(
        name or None, force_new_trace=force_new_trace, **attributes
    )
    return decorated
