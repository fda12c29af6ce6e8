"""Standard ``logging`` inside spans: records become span events.

One handler on the root logger. Inside a span, a record becomes an event of that span
(and a handled error when it carries exception info). Outside any span, logging behaves
as before: when ours is the only handler, records go where Python would have sent them
without it (``logging.lastResort``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar, overload

from span_tree import _ids, _runtime, _span
from span_tree._context import current_span_var
from span_tree._record import Event
from span_tree._sanitize import MAX_MESSAGE_CHARS, truncate

F = TypeVar("F", bound=Callable[..., Any])

# Attributes every LogRecord has; anything else came from `extra=` and is kept.
_STANDARD_RECORD_KEYS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys()) | {
    "message",
    "asctime",
    "taskName",
}
# How many attributes a LogRecord has when made (a custom record factory may add more).
_PLAIN_RECORD_SIZE = len(vars(logging.LogRecord("", 0, "", 0, "", (), None)))
_LogRecord = logging.LogRecord
_current_span = current_span_var.get
_SUPPRESSED = _span.SUPPRESSED
_LEVEL_NAMES = _span._LEVEL_NAMES
_new_event = tuple.__new__
_time_ns = time.time_ns
_NO_EXTRAS = _span._NO_ATTRIBUTES


class SpanEventHandler(logging.Handler):
    """Turns log records emitted inside a span into that span's events."""

    def handle(self, record: logging.LogRecord) -> bool:
        # No handler lock: appending to the span's own event list is thread-safe
        # under the GIL, and the lock would serialise every logging call.
        span = _current_span()
        if span is None or span is _SUPPRESSED:
            _pass_through(record, self)
            return True
        if self.filters and not self.filter(record):
            return False
        try:
            if span.end_ns or not span.start_ns:
                _runtime.stats.late_events += 1
            else:
                _add_event(span, record)
            if record.exc_info and record.exc_info[0] is not None:
                span.record_handled_error(record.exc_info)
        except Exception:
            self.handleError(record)
        return True

    def emit(self, record: logging.LogRecord) -> None:  # pragma: no cover - handle() does it
        self.handle(record)


def _add_event(span: _span.Span, record: logging.LogRecord) -> None:
    """``Span._event`` of a log record written out: this runs once per logging call."""
    fields = record.__dict__
    # No extras: the shared empty mapping (Event.attributes is read-only), not a dict
    # per log record kept alive until the worker takes the span.
    extras: dict[str, Any] = _NO_EXTRAS
    # A record with no more attributes than a fresh one has no `extra=` keys (one
    # length check); else a C set difference finds them (other handlers' formatting
    # adds `message` and `asctime`, which are not extras).
    if len(fields) > _PLAIN_RECORD_SIZE:
        extra_keys = fields.keys() - _STANDARD_RECORD_KEYS
        if extra_keys:
            extras = {key: value for key, value in fields.items() if key in extra_keys}
    if record.__class__ is _LogRecord:
        # LogRecord.getMessage's own steps, without the method call.
        message = record.msg
        if message.__class__ is not str:
            message = str(message)
        if record.args:
            message = message % record.args
    else:  # a record factory's class may define its own getMessage
        message = record.getMessage()
    if len(message) > MAX_MESSAGE_CHARS:
        message = truncate(message, MAX_MESSAGE_CHARS)
    level = record.levelno
    event = _new_event(
        Event,
        (
            _time_ns() // 1000,
            next(span.trace.counter),  # type: ignore[union-attr]  # a started span
            _LEVEL_NAMES.get(level) or _span._level_name(level),
            record.name,
            message,
            record.pathname,
            record.lineno,
            extras,
        ),
    )
    events = span.events
    if events is None:
        span.events = [event]
    else:
        events.append(event)
    if level > span.levelno:
        span.levelno = level


def _pass_through(record: logging.LogRecord, ours: logging.Handler) -> None:
    """Outside a span, act as if our handler were not there (keep lastResort output)."""
    logger: logging.Logger | None = logging.getLogger(record.name)
    while logger is not None:
        if any(handler is not ours for handler in logger.handlers):
            return
        if not logger.propagate:
            return
        logger = logger.parent
    last_resort = logging.lastResort
    if last_resort is not None and record.levelno >= last_resort.level:
        last_resort.handle(record)


_handler: SpanEventHandler | None = None
# The root level before install_handler lowered it (None: it did not).
_root_level_before: int | None = None
_original_basic_config = logging.basicConfig


def install_handler(level: int | None) -> None:
    """Attach the span handler to the root logger once.

    Args:
        level: lower the root logger to this level when logging was not configured by
            the application (root has no handlers), so INFO records inside spans are
            kept; ``None`` leaves the root level alone.
    """
    global _handler, _root_level_before
    root = logging.getLogger()
    if _handler is None:
        _handler = SpanEventHandler()
    if level is not None and not root.handlers and root.level > level:
        _root_level_before = root.level
        root.setLevel(level)
    if _handler not in root.handlers:
        root.addHandler(_handler)
    logging.basicConfig = _basic_config


def reattach_handler() -> None:
    """Put the span handler back if the application's logging setup removed it.

    ``logging.config.dictConfig`` with a root section replaces root's handlers; this runs
    when a new trace starts, so events are captured again from the next trace on.
    """
    if _handler is not None:
        root = logging.getLogger()
        if _handler not in root.handlers:
            root.addHandler(_handler)


def uninstall_handler() -> None:
    """Detach the span handler (used when tracing is reconfigured or in tests)."""
    if _handler is not None:
        logging.getLogger().removeHandler(_handler)
    if logging.basicConfig is _basic_config:
        logging.basicConfig = _original_basic_config


def _basic_config(**kwargs: Any) -> None:
    """``logging.basicConfig`` as if span_tree's handler were not on the root logger.

    The stdlib one does nothing when the root logger has a handler, so without this an
    application calling it after ``configure()`` would silently lose its log output.
    """
    global _root_level_before
    root = logging.getLogger()
    ours = _handler if _handler is not None and _handler in root.handlers else None
    if ours is not None:
        root.removeHandler(ours)
    if _root_level_before is not None and (kwargs.get("force") or not root.handlers):
        # basicConfig will configure logging: undo our lowering of the root level so
        # the application's handler sees the levels it would have seen without us.
        root.setLevel(_root_level_before)
        _root_level_before = None
    try:
        _original_basic_config(**kwargs)
    finally:
        if ours is not None:
            root.addHandler(ours)


class SpanLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """A logger whose calls also open spans: the seed's logger-style API.

    ``log.info(...)`` logs as usual (and lands in the current span); ``with log("name")``
    and ``log.new_span("name")`` open spans; ``@log.span`` decorates; ``log.log_extra``
    adds attributes and cross-trace references to the current span.
    """

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        # The stdlib adapter replaces `extra`; merge so per-call extras are kept.
        kwargs["extra"] = {**(self.extra or {}), **(kwargs.get("extra") or {})}
        return msg, kwargs

    def new_span(
        self, name: Any = None, force_new_trace: bool = False, **attributes: Any
    ) -> _span.Span:
        """Open a span; ``force_new_trace`` starts a new trace linked to the current one."""
        return _span.Span(name, attributes, force_new_trace=force_new_trace)

    __call__ = new_span  # `with log("name"):` is `with log.new_span("name"):`

    # Typed like span_tree.span, so `@log.span("name")` keeps the function's signature.
    @overload
    def span(self, name: F, /) -> F: ...
    @overload
    def span(
        self, name: Any = None, force_new_trace: bool = False, **attributes: Any
    ) -> _span.Span: ...
    def span(self, name: Any = None, force_new_trace: bool = False, **attributes: Any) -> Any:
        """Decorate a function as a span: ``@log.span`` or ``@log.span("name")``."""
        return _span.span(name or None, force_new_trace=force_new_trace, **attributes)

    def log_extra(
        self,
        msg: str = "",
        level: int = logging.INFO,
        /,
        *,
        ref_src: bool = False,
        ref_dest: str = "",
        **attributes: Any,
    ) -> str | None:
        """Add attributes to the current span, optionally logging ``msg`` too.

        Args:
            msg: a message to log at ``level`` (skipped when empty).
            level: the logging level of ``msg``.
            ref_src: create a reference id, record it in the span's ``ref_src`` and
                return it, to put into an outgoing message.
            ref_dest: a reference id received in a message; recorded in ``ref_dest`` so
                the producing and consuming traces can be joined.
            **attributes: attributes to set on the current span.

        Returns:
            The new reference id when ``ref_src`` is true, else None.
        """
        return log_extra(
            self.logger, msg, level, ref_src=ref_src, ref_dest=ref_dest, _stacklevel=3, **attributes
        )


def log_extra(
    logger: logging.Logger,
    msg: str = "",
    level: int = logging.INFO,
    /,
    *,
    ref_src: bool = False,
    ref_dest: str = "",
    _stacklevel: int = 2,
    **attributes: Any,
) -> str | None:
    """``SpanLogger.log_extra`` for a plain ``logging.Logger`` (see there)."""
    current = _span.current_span()
    reference = _ids.new_trace_id() if ref_src else None
    if current is not None:
        if attributes:
            current.set_attributes(**attributes)
        if reference is not None:
            current.add_ref(reference, outgoing=True)
        if ref_dest:
            current.add_ref(ref_dest, outgoing=False)
    if msg:
        logger.log(level, msg, stacklevel=_stacklevel, extra=attributes or None)
    return reference


def get_logger(name: str | None = None) -> SpanLogger:
    """Return a logger-style tracing API for ``name`` (usually ``__name__``)."""
    return SpanLogger(logging.getLogger(name), {})
