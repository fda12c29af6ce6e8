"""Live spans: the context manager / decorator, and the end-of-span hand-off.

Everything here runs on the caller's thread, so it is kept short: no formatting, no
I/O, no locks on the common path. Turning a live span into a ``FinishedSpan`` (scrubbing,
JSON-safety) happens on the processor's worker thread.
"""

from __future__ import annotations

import functools
import os
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import Any, TypeVar, cast, overload

from span_tree import _runtime
from span_tree._context import TraceState, current_span_var
from span_tree._ids import new_span_id, new_trace_id
from span_tree._record import (
    STATUS_FAILED,
    STATUS_STARTED,
    STATUS_SUCCEEDED,
    Event,
    FinishedSpan,
    HandledError,
)
from span_tree._sanitize import sanitize_attributes, sanitize_tags, truncate

F = TypeVar("F", bound=Callable[..., Any])

_LEVEL_NAMES = {10: "DEBUG", 20: "INFO", 30: "WARNING", 40: "ERROR", 50: "CRITICAL"}
_time_us = time.time_ns
_current_thread = threading.current_thread


class SpanTreeWarning(UserWarning):
    """Misuse of the tracing API that span_tree recovered from."""


def _level_name(levelno: int) -> str:
    return _LEVEL_NAMES.get(levelno) or f"LEVEL{levelno}"


def _task_name() -> str | None:
    asyncio = sys.modules.get("asyncio")
    if asyncio is None or asyncio.events._get_running_loop() is None:
        return None
    task = asyncio.current_task()
    return None if task is None else task.get_name()


class Span:
    """A span being recorded. Returned by ``with span(...) as s`` and ``current_span()``.

    Mutations after the span ended are ignored with a ``SpanTreeWarning``.
    """

    __slots__ = (
        "__weakref__",
        "attributes",
        "end_us",
        "error",
        "events",
        "file",
        "function",
        "handled_errors",
        "kind",
        "levelno",
        "line",
        "name",
        "parent_id",
        "ref_dest",
        "ref_src",
        "seq",
        "span_id",
        "start_us",
        "status",
        "task",
        "thread",
        "trace",
    )

    def __init__(
        self,
        name: str,
        trace: TraceState,
        parent_id: str | None,
        attributes: dict[str, Any],
        location: tuple[str | None, int | None, str | None],
        kind: str = "internal",
    ) -> None:
        self.name = name
        self.trace = trace
        self.parent_id = parent_id
        self.span_id = new_span_id()
        self.seq = next(trace.counter)
        self.attributes = attributes
        self.file, self.line, self.function = location
        self.kind = kind
        self.events: list[Event] | None = None
        self.handled_errors: list[HandledError] | None = None
        self.ref_src: list[str] | None = None
        self.ref_dest: list[str] | None = None
        self.error: tuple[str, str, str] | None = None
        self.levelno = 20
        self.status = STATUS_STARTED
        self.thread = _current_thread().name
        self.task = _task_name()
        self.end_us: int | None = None
        self.start_us = _time_us() // 1000

    # -- public API -------------------------------------------------------------------
    @property
    def trace_id(self) -> str:
        """The KSUID of this span's trace."""
        return self.trace.trace_id

    @property
    def ended(self) -> bool:
        """True once the span finished (further changes are ignored)."""
        return self.end_us is not None

    def set_attribute(self, key: str, value: Any) -> None:
        """Set one attribute of this span."""
        if self._check_live("set_attribute"):
            self.attributes[key] = value

    def set_attributes(self, **attributes: Any) -> None:
        """Set several attributes of this span."""
        if self._check_live("set_attributes"):
            self.attributes.update(attributes)

    def set_tags(self, **tags: Any) -> None:
        """Set tags on this span's whole trace (copied onto every span row)."""
        with self.trace.lock:
            self.trace.tags.update({k: str(v) for k, v in tags.items()})

    def add_event(
        self,
        message: str,
        *,
        level: int = 20,
        logger: str = "",
        file: str | None = None,
        line: int | None = None,
        **attributes: Any,
    ) -> None:
        """Record a log event in this span (``logging`` records arrive here too)."""
        if self.end_us is not None:
            _runtime.stats.late_events += 1
            return
        event = Event(
            _time_us() // 1000,
            next(self.trace.counter),
            _level_name(level),
            logger,
            message,
            file,
            line,
            attributes,
        )
        if self.events is None:
            self.events = [event]
        else:
            self.events.append(event)
        if level > self.levelno:
            self.levelno = level

    def record_handled_error(self, error: BaseException | tuple[Any, Any, Any]) -> None:
        """Record an exception that was caught and handled inside this span."""
        if self.end_us is not None:
            return
        if isinstance(error, tuple):
            exc_type, exc_value, exc_tb = error
        else:
            exc_type, exc_value, exc_tb = type(error), error, error.__traceback__
        handled = HandledError(
            _time_us() // 1000,
            _type_name(exc_type),
            truncate(str(exc_value)),
            "".join(traceback.format_exception(exc_type, exc_value, exc_tb)),
        )
        if self.handled_errors is None:
            self.handled_errors = [handled]
        else:
            self.handled_errors.append(handled)

    def add_ref(self, ref: str, *, outgoing: bool) -> None:
        """Record a cross-trace reference: ``outgoing`` in ``ref_src``, else ``ref_dest``."""
        if outgoing:
            self.ref_src = [*(self.ref_src or ()), ref]
        else:
            self.ref_dest = [*(self.ref_dest or ()), ref]

    def end(self, error: BaseException | None = None) -> None:
        """Finish the span (the context manager and decorator call this for you)."""
        if self.end_us is not None:
            warnings.warn(f"span {self.name!r} already ended", SpanTreeWarning, stacklevel=2)
            return
        _finish(self, type(error) if error else None, error, error.__traceback__ if error else None)

    def __repr__(self) -> str:
        return f"<Span {self.name!r} {self.status} trace={self.trace.trace_id} id={self.span_id}>"

    def _check_live(self, what: str) -> bool:
        if self.end_us is None:
            return True
        warnings.warn(
            f"{what} on span {self.name!r} after it ended is ignored", SpanTreeWarning, stacklevel=3
        )
        return False


def _type_name(exc_type: Any) -> str:
    if exc_type is None:
        return ""
    module = getattr(exc_type, "__module__", "")
    qualname = getattr(exc_type, "__qualname__", str(exc_type))
    return qualname if module in ("builtins", "") else f"{module}.{qualname}"


# A stand-in current span for threads whose work must not be traced (the processor).
SUPPRESSED = cast(Span, object.__new__(Span))


def _start_span(
    name: str,
    attributes: dict[str, Any],
    location: tuple[str | None, int | None, str | None],
    *,
    force_new_trace: bool = False,
    kind: str = "internal",
    remote_parent: tuple[str, str] | None = None,
) -> Span | None:
    if _runtime.processor is None:
        _runtime.auto_configure()
    parent = current_span_var.get()
    if parent is SUPPRESSED or not _runtime.enabled:
        return None
    if remote_parent is not None:
        # Continue a trace started in another process (W3C traceparent): same trace id,
        # parent span id from the caller; this process's part has its own local state.
        trace = TraceState(remote_parent[0], dict(_runtime.settings.tags))
        span = Span(name, trace, remote_parent[1], attributes, location, kind)
    elif parent is None or force_new_trace:
        links = (parent.trace.trace_id,) if parent is not None else ()
        trace = TraceState(new_trace_id(), dict(_runtime.settings.tags), links)
        span = Span(name, trace, None, attributes, location, kind)
    else:
        trace = parent.trace
        span = Span(name, trace, parent.span_id, attributes, location, kind)
    trace.open_spans.add(span)
    return span


def _finish(
    span: Span,
    exc_type: type[BaseException] | None,
    exc: BaseException | None,
    tb: TracebackType | None,
) -> None:
    span.end_us = _time_us() // 1000
    if exc_type is None:
        span.status = STATUS_SUCCEEDED
    else:
        span.status = STATUS_FAILED
        span.error = (
            _type_name(exc_type),
            truncate(str(exc)),
            "".join(traceback.format_exception(exc_type, exc, tb)),
        )
    trace = span.trace
    trace.open_spans.discard(span)
    processor = _runtime.processor
    if span.parent_id is None:
        trace.root_ended = True
        # A parent never finishes silently before its children: publish the ones still
        # running as `started` now; their finished version follows when they end.
        for child in list(trace.open_spans):
            _runtime.emit_snapshot(to_record(child, status=STATUS_STARTED))
    if _runtime.listeners:
        _runtime.notify_listeners(to_record(span))
    if processor is not None:
        processor.on_end(span)


def to_record(span: Span, *, status: str | None = None) -> FinishedSpan:
    """Freeze a live span into the record sinks receive (scrubbed and JSON-safe)."""
    settings = _runtime.settings
    scrub = settings.scrub_pattern
    trace = span.trace
    end = span.end_us if status is None else None
    error = span.error or (None, None, None)
    events = span.events
    if events:
        events = [
            event._replace(attributes=sanitize_attributes(event.attributes, scrub))
            if event.attributes
            else event
            for event in events
        ]
    levelno = 40 if span.status == STATUS_FAILED and status is None else span.levelno
    start = span.start_us
    return FinishedSpan(
        settings.namespace,
        time.strftime("%Y-%m-%d", time.gmtime(start / 1e6)),
        trace.trace_id,
        span.span_id,
        span.parent_id,
        span.seq,
        span.name,
        span.kind,
        status or span.status,
        _level_name(levelno),
        start,
        end,
        None if end is None else end - start,
        span.file,
        span.line,
        span.function,
        settings.app,
        settings.app_version,
        settings.host,
        os.getpid(),
        span.thread,
        span.task,
        sanitize_tags(trace.tags, scrub) if trace.tags else {},
        sanitize_attributes(span.attributes, scrub) if span.attributes else {},
        error[0],
        error[1],
        error[2],
        tuple(span.handled_errors or ()),
        tuple(events or ()),
        trace.links,
        tuple(span.ref_src or ()),
        tuple(span.ref_dest or ()),
        None,
        settings.schema_version,
    )


# -- the public context manager / decorator --------------------------------------------


def _frame_location(frame: FrameType | None) -> tuple[str | None, int | None, str | None]:
    if frame is None:
        return (None, None, None)
    code = frame.f_code
    return (code.co_filename, frame.f_lineno, code.co_qualname)


def _default_name(frame: FrameType | None) -> str:
    if frame is None:
        return "span"
    qualname = frame.f_code.co_qualname
    if qualname == "<module>":
        return frame.f_globals.get("__name__", "<module>")
    return qualname


class SpanScope:
    """What ``span(...)`` returns: a context manager and a decorator.

    As a context manager it opens a new span on each ``with`` (so one scope object can be
    entered again, even from several threads); as a decorator it wraps sync and async
    functions, the span covering the whole call (or the whole ``await``).
    """

    __slots__ = ("_active", "attributes", "force_new_trace", "kind", "name", "remote_parent")

    def __init__(
        self,
        name: str | None,
        attributes: dict[str, Any],
        *,
        force_new_trace: bool = False,
        kind: str = "internal",
        remote_parent: tuple[str, str] | None = None,
    ) -> None:
        self.name = name
        self.attributes = attributes
        self.force_new_trace = force_new_trace
        self.kind = kind
        self.remote_parent = remote_parent
        self._active: dict[int, list[tuple[Span | None, Any]]] = {}

    def __enter__(self) -> Span:
        frame = sys._getframe(1)
        name = self.name if self.name is not None else _default_name(frame)
        span = _start_span(
            name,
            dict(self.attributes),
            _frame_location(frame),
            force_new_trace=self.force_new_trace,
            kind=self.kind,
            remote_parent=self.remote_parent,
        )
        token = current_span_var.set(span) if span is not None else None
        self._active.setdefault(threading.get_ident(), []).append((span, token))
        return span if span is not None else _detached_span(name)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        stack = self._active.get(threading.get_ident())
        if not stack:
            warnings.warn("span scope exited without being entered", SpanTreeWarning, stacklevel=2)
            return
        span, token = stack.pop()
        if not stack:
            del self._active[threading.get_ident()]
        if span is None:
            return
        _exit_span(span, token, exc_type, exc, tb)

    def __call__(self, fn: F) -> F:
        return _decorate(fn, self.name, self.attributes, self.force_new_trace, self.kind)


def _exit_span(
    span: Span,
    token: Any,
    exc_type: type[BaseException] | None,
    exc: BaseException | None,
    tb: TracebackType | None,
) -> None:
    if span.end_us is None:
        _finish(span, exc_type, exc, tb)
    try:
        current_span_var.reset(token)
    except ValueError:
        # Exited in another context than it was entered (a generator resumed elsewhere):
        # fall back to clearing this span rather than failing the caller.
        if current_span_var.get() is span:
            current_span_var.set(None)


def _detached_span(name: str) -> Span:
    """A span that records nothing, for when tracing is suppressed or disabled."""
    trace = TraceState("", {})
    span = Span(name, trace, None, {}, (None, None, None))
    span.end_us = span.start_us
    return span


def _decorate(
    fn: F, name: str | None, attributes: dict[str, Any], force_new_trace: bool, kind: str
) -> F:
    import inspect

    if not callable(fn):
        raise TypeError(f"span() decorates functions, not {type(fn).__name__}")
    span_name = name if name is not None else getattr(fn, "__qualname__", repr(fn))
    code = getattr(inspect.unwrap(fn), "__code__", None)
    location = (
        (code.co_filename, code.co_firstlineno, code.co_qualname)
        if code is not None
        else (None, None, span_name)
    )

    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            span = _start_span(
                span_name, dict(attributes), location, force_new_trace=force_new_trace, kind=kind
            )
            if span is None:
                return await fn(*args, **kwargs)
            token = current_span_var.set(span)
            try:
                result = await fn(*args, **kwargs)
            except BaseException as error:
                _exit_span(span, token, type(error), error, error.__traceback__)
                raise
            _exit_span(span, token, None, None, None)
            return result

        return cast(F, async_wrapper)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        span = _start_span(
            span_name, dict(attributes), location, force_new_trace=force_new_trace, kind=kind
        )
        if span is None:
            return fn(*args, **kwargs)
        token = current_span_var.set(span)
        try:
            result = fn(*args, **kwargs)
        except BaseException as error:
            _exit_span(span, token, type(error), error, error.__traceback__)
            raise
        _exit_span(span, token, None, None, None)
        return result

    return cast(F, wrapper)


@overload
def span(name: F, /) -> F: ...
@overload
def span(name: str | None = None, /, **attributes: Any) -> SpanScope: ...
def span(name: Any = None, /, **attributes: Any) -> Any:
    """Open a span: ``with span("load", user=42):`` or ``@span`` / ``@span("name")``.

    Args:
        name: the span's name. Defaults to the decorated function's qualified name, or
            for ``with``, the calling function's name. Non-strings are converted with
            ``str()``. Passing a function (bare ``@span``) decorates it.
        **attributes: attributes of this span (JSON-safe values are kept as they are,
            others as their ``repr``; sensitive keys are scrubbed).

    Returns:
        A ``SpanScope`` usable as context manager and decorator, or the decorated
        function for bare ``@span``.
    """
    if callable(name) and not isinstance(name, str):
        return _decorate(name, None, attributes, False, "internal")
    if name is not None and not isinstance(name, str):
        name = str(name)
    return SpanScope(name, attributes)


def current_span() -> Span | None:
    """Return the span active in this context, or None outside any span."""
    span = current_span_var.get()
    return None if span is SUPPRESSED else span


def set_tags(**tags: Any) -> None:
    """Set tags on the current trace, or on every future trace outside any span.

    Tags (``env``, ``app``, ``version``, your own) belong to a trace and are copied onto
    each of its span rows.
    """
    span = current_span()
    if span is not None:
        span.set_tags(**tags)
    else:
        _runtime.settings.tags.update({k: str(v) for k, v in tags.items()})


def wrap(fn: F) -> F:
    """Bind ``fn`` to the current span, so it runs as its child wherever it is called.

    For work handed to threads or executors that span_tree does not patch.
    """
    parent = current_span_var.get()

    @functools.wraps(fn)
    def bound(*args: Any, **kwargs: Any) -> Any:
        token = current_span_var.set(parent)
        try:
            return fn(*args, **kwargs)
        finally:
            current_span_var.reset(token)

    return cast(F, bound)
