"""Live spans: the context manager / decorator, and the end-of-span hand-off.

Everything here runs on the caller's thread, so it is kept short: no formatting, no
I/O, no locks on the common path, and optional fields are only set when used. Turning a
live span into a ``FinishedSpan`` (scrubbing, JSON-safety) happens on the processor's
worker thread (``to_record``).
"""

from __future__ import annotations

import _random as _random_module
import functools
import operator
import os
import struct
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Sequence
from contextvars import Token
from itertools import repeat
from types import CodeType, FrameType, TracebackType
from typing import Any, TypeVar, cast, overload

from span_tree import _runtime
from span_tree._context import TraceState, current_span_var
from span_tree._ids import new_trace_id
from span_tree._record import (
    SPAN_COLUMNS,
    STATUS_FAILED,
    STATUS_STARTED,
    STATUS_SUCCEEDED,
    Event,
    FinishedSpan,
    HandledError,
    columns_from_records,
    records_from_columns,
    utc_day,
)
from span_tree._sanitize import (
    MAX_NAME_CHARS,
    MAX_TEXT_CHARS,
    MAX_TRACEBACK_CHARS,
    clean_event_lists,
    clean_handled_error,
    clean_text,
    sanitize_attributes,
    sanitize_tags,
    scrubber,
    truncate,
)

F = TypeVar("F", bound=Callable[..., Any])

_LEVEL_NAMES = {10: "DEBUG", 20: "INFO", 30: "WARNING", 40: "ERROR", 50: "CRITICAL"}
_time_ns = time.time_ns
_getframe = sys._getframe
_modules_get = sys.modules.get
# A 64-bit id as 16 hex characters: %-formatting is 4x faster than an f-string spec here.
_hex16 = "%016x".__mod__
# Many at once (the worker's columns): packed, hexed with a space every 8 bytes, and
# split there, in three C calls (half the cost of a regex cutting the hex text).
_pack = struct.pack
_state = _runtime.state  # never replaced, only its fields: one global lookup per read
_current_thread = threading.current_thread
_get_ident = threading.get_ident
# threading's own map of running threads (what current_thread() reads): one C call here
# instead of a Python one; a thread threading does not know falls back to current_thread.
_active_thread = threading._active.get  # type: ignore[attr-defined]
# A private generator: user code calling random.seed() must not make span ids collide.
# The C generator itself: `random` (the Python module) costs the import a few ms.
_random = _random_module.Random()
_random_bits = _random.getrandbits
os.register_at_fork(after_in_child=_random.seed)  # no argument: seeded from os.urandom


class SpanTreeWarning(UserWarning):
    """Misuse of the tracing API that span_tree recovered from."""


def _internal_error(error: Exception) -> None:
    """Absorb a failure of span_tree's own code on the caller's thread.

    Tracing must never raise into the traced application: the failure is counted
    (``stats()["internal_errors"]``) and reported by one warning per process. Our own
    test suite sets ``SPANTREE_RAISE_INTERNAL_ERRORS=1`` so that such bugs stay visible
    (Logfire's ``handle_internal_errors`` does the same). Call it from an ``except`` block.
    """
    _runtime.stats.internal_errors += 1
    if os.environ.get("SPANTREE_RAISE_INTERNAL_ERRORS") == "1":
        raise error
    if _runtime.stats.internal_errors == 1:
        warnings.warn(
            f"span_tree internal error, tracing goes on (counted in span_tree.stats()): "
            f"{type(error).__name__}: {_error_text(error)}",
            SpanTreeWarning,
            stacklevel=3,
        )


def safe_str(value: Any) -> str:
    """``str(value)``, or a placeholder naming its type when its ``__str__`` raises."""
    try:
        return value if value.__class__ is str else str(value)
    except Exception:
        return f"<{type(value).__name__}: str() failed>"


def _level_name(levelno: int) -> str:
    return _LEVEL_NAMES.get(levelno) or f"LEVEL{levelno}"


def _no_loop_yet() -> Any:
    """``asyncio.events._get_running_loop`` until asyncio is imported: None meanwhile.

    Once asyncio is fully imported, it replaces itself with asyncio's C function (one C
    call per span afterwards) and takes ``asyncio.current_task`` along.
    """
    global _running_loop, _current_task
    if _modules_get("asyncio") is None:
        return None
    functions = _fully_imported_asyncio()
    if functions is None:
        return None
    _running_loop, _current_task = functions
    return _running_loop()


_running_loop: Callable[[], Any] = _no_loop_yet
_current_task: Callable[[], Any] = lambda: None  # noqa: E731  # replaced with asyncio's


def _task_name() -> str | None:
    """The name of the asyncio task running in this thread, or None."""
    if _running_loop() is None:
        return None
    task = _current_task()
    return None if task is None else task.get_name()


def _fully_imported_asyncio() -> tuple[Callable[[], Any], Callable[[], Any]] | None:
    # Another thread (the processor's worker importing a sink's libraries) may be
    # importing asyncio right now: sys.modules then holds a half-initialised module whose
    # attributes do not exist yet. A loop can only run in this thread once asyncio was
    # imported completely, so a module still initialising means "no task".
    asyncio = sys.modules.get("asyncio")
    if asyncio is None or getattr(getattr(asyncio, "__spec__", None), "_initializing", False):
        return None
    try:
        return asyncio.events._get_running_loop, asyncio.current_task
    except AttributeError:  # initialising without a spec flag (a custom importer)
        return None


class Span:
    """A span: what ``span(...)`` returns, what ``with ... as s`` and ``current_span()`` give.

    Usable as a context manager (the span starts on ``with`` and ends when the block
    exits) and as a decorator (each call of the function records a new span). Changes
    after the span ended are ignored with a ``SpanTreeWarning``.

    Args:
        name: the span name (None: the calling function's name, taken on ``with``).
        attributes: this span's attributes.
        force_new_trace: start a new trace that links to the current one.
        kind: "internal", "server", "client"...
        remote_parent: ``(trace_id, parent_span_id)`` to continue a trace begun in
            another process (W3C traceparent).
    """

    __slots__ = (
        "__weakref__",
        "_attributes",
        "code",
        "copy_of",
        "end_ns",
        "error",
        "events",
        "handled_errors",
        "kind",
        "lasti",
        "levelno",
        "line",
        "name",
        "options",
        "parent_ref",
        "ref_dest",
        "ref_src",
        "seq",
        "sid",
        "start_ns",
        "task_ref",
        "thread_ref",
        "token",
        "trace",
    )

    # Set when the span starts (see _start), in their cheapest form: the worker formats
    # them (``span_id``, ``parent_id``, ``thread``, ``task`` give the text forms).
    sid: int  # the 64-bit span id
    parent_ref: int | str | None  # the parent's sid, or a remote parent's hex id
    seq: int
    thread_ref: threading.Thread
    task_ref: Any  # the asyncio task running the span, or None

    def __init__(
        self,
        name: str | None = None,
        attributes: dict[str, Any] | None = None,
        *,
        force_new_trace: bool = False,
        kind: str = "internal",
        remote_parent: tuple[str, str] | None = None,
    ) -> None:
        self.name = name
        # None until an attribute is set or read: no empty dict kept alive per span (each
        # container counts towards the cyclic GC's next collection).
        self._attributes = attributes
        self.kind = kind
        self.options = (
            (force_new_trace, remote_parent) if force_new_trace or remote_parent else None
        )
        self.start_ns = 0
        self.end_ns = 0
        # Optional fields start as None: a getattr() default on an unset slot raises
        # internally and costs more on the worker than these stores cost here.
        self.events: list[Event] | None = None
        self.handled_errors: list[HandledError] | None = None
        self.error: tuple[str, str, str] | None = None
        self.ref_src: list[str] | None = None
        self.ref_dest: list[str] | None = None
        self.token: Any = None
        self.copy_of: Span | None = None
        self.code: CodeType | None = None
        # The line: given (decorators, integrations), or found on the worker from the
        # code and the caller's last instruction (``f_lineno`` costs a table walk).
        self.line: int | None = None
        self.lasti = -1
        self.trace: TraceState | None = None
        self.levelno = 20

    # -- context manager and decorator ------------------------------------------------
    def __enter__(self) -> Span:
        try:
            frame = _getframe(1)
            if not self.start_ns:
                if self.name is None:
                    self.name = _default_name(frame)
                self.code = frame.f_code
                self.lasti = frame.f_lasti
                parent = current_span_var.get()
                if (
                    parent is not None
                    and parent is not SUPPRESSED
                    and self.options is None
                    and _state.foreign_parent is None
                    and _state.enabled
                    and _state.processor is not None
                ):
                    # _start's usual case written out (a child in its parent's trace):
                    # one Python call less for every `with`.
                    trace = self.trace = parent.trace
                    self.parent_ref = parent.sid
                    self.sid = _random_bits(64)
                    self.seq = next(trace.counter)  # type: ignore[union-attr]  # started
                    self.thread_ref = _active_thread(_get_ident()) or _current_thread()
                    self.task_ref = None if _running_loop() is None else _current_task()
                    trace.open_spans.add(self)  # type: ignore[union-attr]
                    self.start_ns = _time_ns()
                    self.token = current_span_var.set(self)
                    return self
                # Not recorded (tracing off, or the processor's own thread): remember that
                # it was entered so that leaving it is not reported as misuse.
                self.token = current_span_var.set(self) if _start(self) else _UNRECORDED
                return self
            # Entering a span object again (or from a second thread) records a new span
            # with the same name and attributes rather than corrupting this one.
            span = Span(self.name, dict(self._attributes or {}), kind=self.kind)
            span.options = self.options
            span.copy_of = self
            return span._enter_from(frame)
        except Exception as error:
            _internal_error(error)
            self.token = _UNRECORDED
            return self

    def _enter_from(self, frame: FrameType) -> Span:
        if self.name is None:
            self.name = _default_name(frame)
        self.code = frame.f_code
        self.lasti = frame.f_lasti
        if _start(self):
            self.token = current_span_var.set(self)
        else:
            # Not recorded (tracing off, or the processor's own thread): remember that it
            # was entered so that leaving it is not reported as misuse.
            self.token = _UNRECORDED
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        current = current_span_var.get()
        if (
            current is self
            and exc_type is None
            and not self.end_ns
            and self.token.__class__ is Token
        ):
            # The common case: this span is current and leaves without an error;
            # _finish_plain written out (one Python call less for every `with`).
            try:
                self.end_ns = _time_ns()
                self.trace.open_spans.discard(self)  # type: ignore[union-attr]  # started
                if self.seq == 1 or _runtime.listeners:
                    _finish_rest(self)
                else:
                    processor = _state.processor
                    if processor is not None:
                        queue = processor.queue
                        if len(queue) < processor.fast_limit:
                            queue.append(self)  # on_end's own fast path, without the call
                        else:
                            processor.on_end(self)
            except Exception as error:
                _internal_error(error)
            finally:
                try:
                    current_span_var.reset(self.token)
                    self.token = _EXITED
                except ValueError:
                    _restore_context(self)  # left in another context: see there
            return
        try:
            span = self
            if current is not self and current is not None and current.copy_of is self:
                span = current
            if not span.start_ns or span.token is _EXITED:
                if span.token is _EXITED:
                    warnings.warn(
                        f"span {safe_str(span.name)!r} exited twice", SpanTreeWarning, stacklevel=2
                    )
                elif span.token is not _UNRECORDED:
                    warnings.warn(
                        "span exited without being entered", SpanTreeWarning, stacklevel=2
                    )
                return
            if (
                current is not span
                and current is not None
                and current.start_ns
                and not current.end_ns
            ):
                # Out of order (manual __exit__, a span held open across a generator's
                # yield): the context still returns to this span when the inner one
                # exits. Say so.
                warnings.warn(
                    f"span {safe_str(span.name)!r} exited while span "
                    f"{safe_str(current.name)!r} is current; "
                    "spans must exit in the reverse order of entering",
                    SpanTreeWarning,
                    stacklevel=2,
                )
        except Exception as error:
            _internal_error(error)
        _exit(span, exc_type, exc, tb)

    def __call__(self, fn: F) -> F:
        return _decorate(fn, self.name, self._attributes or {}, self.options, self.kind)

    # -- public API -------------------------------------------------------------------
    @property
    def span_id(self) -> str:
        """This span's id: 16 hex characters (set when the span starts)."""
        return _hex16(self.sid)

    @property
    def parent_id(self) -> str | None:
        """The parent span's id (16 hex characters), None for a trace's root."""
        return _hex_id(self.parent_ref)

    @property
    def thread(self) -> str:
        """The name of the thread that started the span."""
        return self.thread_ref.name

    @property
    def task(self) -> str | None:
        """The name of the asyncio task that started the span, or None."""
        task = self.task_ref
        return None if task is None else task.get_name()

    @property
    def trace_id(self) -> str:
        """The KSUID of this span's trace ("" before the span started)."""
        return self.trace.trace_id if self.trace is not None else ""

    @property
    def ended(self) -> bool:
        """True once the span finished (further changes are ignored)."""
        return bool(self.end_ns)

    @property
    def status(self) -> str:
        """``started`` while running, then ``succeeded`` or ``failed``."""
        if not self.end_ns:
            return STATUS_STARTED
        return STATUS_FAILED if self.error else STATUS_SUCCEEDED

    @property
    def attributes(self) -> dict[str, Any]:
        """This span's attributes (a dict, empty until one is set)."""
        if self._attributes is None:
            self._attributes = {}
        return self._attributes

    @attributes.setter
    def attributes(self, value: dict[str, Any]) -> None:
        self._attributes = value

    def set_attribute(self, key: str, value: Any) -> None:
        """Set one attribute of this span."""
        if self._check_live("set_attribute"):
            if self._attributes is None:
                self._attributes = {}
            self._attributes[key] = value

    def set_attributes(self, **attributes: Any) -> None:
        """Set several attributes of this span."""
        if self._check_live("set_attributes"):
            if self._attributes is None:
                self._attributes = {}
            self._attributes.update(attributes)

    def set_tags(self, **tags: Any) -> None:
        """Set tags on this span's whole trace (copied onto every span row)."""
        trace = self.trace
        if trace is None:
            return
        with trace.lock:
            trace.tags.update({k: safe_str(v) for k, v in tags.items()})

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
        self._event(message, level, logger, file, line, attributes)

    def _event(
        self,
        message: str,
        level: int,
        logger: str,
        file: str | None,
        line: int | None,
        attributes: dict[str, Any],
    ) -> None:
        """``add_event`` with positional arguments (the logging handler's path)."""
        if self.end_ns or not self.start_ns:
            _runtime.stats.late_events += 1
            return
        event = _new_record(
            Event,
            (
                _time_ns() // 1000,
                next(self.trace.counter),  # type: ignore[union-attr]  # started, checked above
                _LEVEL_NAMES.get(level) or _level_name(level),
                logger,
                message,
                file,
                line,
                attributes,
            ),
        )
        if self.events is None:
            self.events = [event]
        else:
            self.events.append(event)
        if level > self.levelno:
            self.levelno = level

    def record_handled_error(self, error: BaseException | tuple[Any, Any, Any]) -> None:
        """Record an exception that was caught and handled inside this span."""
        if self.end_ns:
            return
        if isinstance(error, tuple):
            exc_type, exc_value, exc_tb = error
        else:
            exc_type, exc_value, exc_tb = type(error), error, error.__traceback__
        handled = HandledError(
            _time_ns() // 1000,
            _type_name(exc_type),
            _error_text(exc_value),
            _traceback_text(exc_type, exc_value, exc_tb),
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
        """Finish the span now (the context manager and decorator do this for you)."""
        if self.end_ns or not self.start_ns:
            what = "already ended" if self.end_ns else "was never started"
            warnings.warn(f"span {safe_str(self.name)!r} {what}", SpanTreeWarning, stacklevel=2)
            return
        _finish(self, type(error) if error else None, error, error.__traceback__ if error else None)

    def __repr__(self) -> str:
        return f"<Span {self.name!r} {self.status} trace={self.trace_id}>"

    def _check_live(self, what: str) -> bool:
        if not self.end_ns:
            return True
        warnings.warn(
            f"{what} on span {safe_str(self.name)!r} after it ended is ignored",
            SpanTreeWarning,
            stacklevel=3,
        )
        return False


def _hex_id(ref: int | str | None) -> str | None:
    """A span id kept as an int (local) or text (a remote parent's) as 16 hex characters."""
    return _hex16(ref) if ref.__class__ is int else ref  # type: ignore[return-value]


# Keyed by the code object's id (hashing a code object hashes all its constants); the
# entry keeps the code object, so an id reused by another code object is told apart.
_line_cache: dict[tuple[int, int], tuple[CodeType, int | None]] = {}


def _line_at(code: CodeType, lasti: int) -> int | None:
    """The source line of the instruction at byte offset ``lasti`` of ``code`` (cached)."""
    key = (id(code), lasti)
    known = _line_cache.get(key)
    if known is not None and known[0] is code:
        return known[1]
    line = None
    for start, end, number in code.co_lines():
        if start <= lasti < end:
            line = number
            break
    if len(_line_cache) >= 4096:
        _line_cache.clear()
    _line_cache[key] = (code, line)
    return line


def _error_text(error: Any) -> str:
    """``str(error)``, bounded; an exception whose ``__str__`` raises must still propagate."""
    try:
        return truncate(str(error))
    except Exception:
        return f"<exception str() failed: {type(error).__name__}>"


# span_tree's own frames between the user's (the decorator's wrapper, the ASGI
# middleware, the httpx client span) say nothing about the error: stored tracebacks
# leave them out.
_OWN_FILES = (__file__, os.path.join(os.path.dirname(__file__), "integrations", ""))


def _traceback_text(exc_type: Any, exc: Any, tb: TracebackType | None) -> str:
    """The formatted traceback without span_tree's own frames; a broken exception
    object must still propagate."""
    try:
        error = traceback.TracebackException(exc_type, exc, tb, compact=True)
        _hide_own_frames(error)
        return "".join(error.format())
    except Exception:
        return f"<traceback could not be formatted: {_type_name(exc_type)}>"


def _hide_own_frames(error: traceback.TracebackException) -> None:
    seen: set[int] = set()
    pending = [error]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        kept = [frame for frame in current.stack if not frame.filename.startswith(_OWN_FILES)]
        if kept and len(kept) < len(current.stack):  # an error of span_tree's own keeps all
            current.stack = traceback.StackSummary.from_list(kept)
        pending.extend(
            chained
            for chained in (current.__cause__, current.__context__, *(current.exceptions or ()))
            if chained is not None
        )


def _type_name(exc_type: Any) -> str:
    if exc_type is None:
        return ""
    module = getattr(exc_type, "__module__", "")
    qualname = getattr(exc_type, "__qualname__", str(exc_type))
    return qualname if module in ("builtins", "") else f"{module}.{qualname}"


# A stand-in current span for threads whose work must not be traced (the processor).
SUPPRESSED = Span("<suppressed>")
# The token of a span entered while nothing was recorded.
_UNRECORDED: Any = object()
# The token of a span that exited: a second exit is misuse, not a reset of the context.
_EXITED: Any = object()


def _guarded_start(span: Span) -> bool:
    """``_start`` for the decorators: a failure of ours records nothing, never raises."""
    try:
        return _start(span)
    except Exception as error:
        _internal_error(error)
        return False


def _start(span: Span) -> bool:
    """Attach ``span`` to the current trace (or a new one) and start its clock."""
    if _state.processor is None:
        _runtime.auto_configure()
    parent = current_span_var.get()
    if parent is SUPPRESSED or not _state.enabled:
        return False
    options = span.options
    if options is None and _state.foreign_parent is not None:
        # Another tracer's open span newer than `parent` (span_tree.otel's bridge: an
        # OpenTelemetry span) is the parent: continue its trace like a remote one.
        foreign = _state.foreign_parent(parent)
        if foreign is not None:
            options = (False, foreign)
    trace: TraceState
    if options is None and parent is not None:
        trace = parent.trace  # type: ignore[assignment]  # a current span has started
        span.parent_ref = parent.sid
    elif options is not None and options[1] is not None:
        # Continue a trace started in another process (W3C traceparent): same trace id,
        # parent span id from the caller; this process's part has its own local state.
        trace = TraceState(options[1][0], dict(_state.settings.tags))
        span.parent_ref = options[1][1]
    else:
        links = (parent.trace_id,) if parent is not None else ()
        trace = TraceState(new_trace_id(), dict(_state.settings.tags), links)
        if _state.on_new_trace is not None:
            _state.on_new_trace()
        span.parent_ref = None
    span.trace = trace
    span.sid = _random_bits(64)
    span.seq = next(trace.counter)
    # Names are read on the worker (ids and objects here: no Python call, no formatting).
    span.thread_ref = _active_thread(_get_ident()) or _current_thread()
    span.task_ref = None if _running_loop() is None else _current_task()
    trace.open_spans.add(span)
    span.start_ns = _time_ns()
    return True


def _exit(
    span: Span,
    exc_type: type[BaseException] | None,
    exc: BaseException | None,
    tb: TracebackType | None,
) -> None:
    """End ``span`` and give the context back to its parent; never raises into the caller."""
    try:
        if not span.end_ns:
            _finish(span, exc_type, exc, tb)
    except Exception as error:
        _internal_error(error)
    finally:
        _restore_context(span)


def _restore_context(span: Span) -> None:
    token = span.token
    if token is None or token is _EXITED:
        return
    try:
        current_span_var.reset(token)
    except ValueError:
        # Exited in another context than it was entered (a generator resumed elsewhere,
        # another thread): clear this span there; the token stays usable, so an exit in
        # the entering context still gives that context back to the parent.
        if current_span_var.get() is span:
            current_span_var.set(None)
    else:
        span.token = _EXITED


def _finish_plain(span: Span) -> None:
    """``_finish`` of a span that succeeded and is not its trace's local root."""
    span.end_ns = _time_ns()
    trace = span.trace
    trace.open_spans.discard(span)  # type: ignore[union-attr]  # a started span
    if span.seq == 1 or _runtime.listeners:
        _finish_rest(span)
        return
    processor = _state.processor
    if processor is not None:
        queue = processor.queue
        if len(queue) < processor.fast_limit:
            queue.append(span)  # on_end's own fast path, without the call
        else:
            processor.on_end(span)


def _finish(
    span: Span,
    exc_type: type[BaseException] | None,
    exc: BaseException | None,
    tb: TracebackType | None,
) -> None:
    span.end_ns = _time_ns()
    if exc_type is not None:
        span.error = (_type_name(exc_type), _error_text(exc), _traceback_text(exc_type, exc, tb))
    trace = span.trace
    assert trace is not None  # only started spans finish
    trace.open_spans.discard(span)
    _finish_rest(span)


def _finish_rest(span: Span) -> None:
    """What ends a span after its clock stopped: root snapshots, listeners, the queue."""
    trace = span.trace
    assert trace is not None  # only started spans finish
    # The first span of the trace in this process (seq 1) is its local root: parent_id is
    # None, or the caller's span id when the trace was continued from another process.
    if span.seq == 1:
        # A parent never finishes silently before its children: publish the ones still
        # running as `started` now; their finished version follows when they end.
        for child in list(trace.open_spans):
            try:
                _runtime.emit_snapshot(to_record(child, status=STATUS_STARTED))
            except Exception as error:  # one bad child must not keep the root from the queue
                _internal_error(error)
    if _runtime.listeners:
        _runtime.notify_listeners(to_record(span))
    processor = _state.processor
    if processor is not None:
        processor.on_end(span)


def to_records(items: list[Any]) -> list[FinishedSpan]:
    """The processor's record converter: live spans frozen into records, ready records kept."""
    return records_from_columns(to_columns(items))


def to_columns(items: list[Any]) -> list[list[Any]]:
    """The processor's converter: a batch of live spans (and ready records) as columns.

    One list per ``SPAN_COLUMNS`` entry, in that order, holding what ``FinishedSpan``
    fields hold: the form the Parquet sink encodes without a record per span.
    """
    for item in items:
        if item.__class__ is not Span:
            return _mixed_columns(items)
    return _columns(items, None)


def _mixed_columns(items: list[Any]) -> list[list[Any]]:
    """A batch holding ready records (``started`` snapshots) too: in arrival order."""
    live = [item for item in items if item.__class__ is Span]
    frozen = iter(records_from_columns(_columns(live, None)) if live else ())
    records = [next(frozen) if item.__class__ is Span else item for item in items]
    return columns_from_records(records)


def suppress_tracing() -> None:
    """Nothing this thread does from now on is traced (the processor's worker)."""
    current_span_var.set(SUPPRESSED)


UNNAMED = "<unnamed>"  # the recorded name of a span named ""
# The attributes (and tags) of every span recorded without any: one shared mapping,
# read-only by contract (``FinishedSpan.attributes`` and ``tags`` are Mappings), like a
# trace's tags shared by its spans. A fresh dict per span made the worker's conversion
# allocate a container per span, and the writer compare them where one object repeats.
_NO_ATTRIBUTES: dict[str, Any] = {}
_new_record = tuple.__new__
_DAY_US = 86_400_000_000


def to_record(span: Span, *, status: str | None = None) -> FinishedSpan:
    """Freeze a live span into the record sinks receive (scrubbed and JSON-safe).

    Args:
        span: a started span.
        status: force a status (``started`` for the snapshot of a running span).
    """
    return records_from_columns(_columns([span], status))[0]


def _columns(spans: list[Span], forced_status: str | None) -> list[list[Any]]:
    """Freeze a batch of live spans into columns, column by column.

    What spans of a batch share is converted once: the settings' columns, and per
    distinct value the cleaned name, the scrubbed tags of each trace, each thread's name,
    each code location; a column whose spans all hold the default (no error, no event,
    level INFO...) is one repeated value.
    """
    settings = _state.settings
    # The Scrubber itself, found once: each text and mapping below skips that lookup.
    scrub = scrubber(settings.scrub_pattern)
    count = len(spans)
    if not count:
        return [[] for _ in SPAN_COLUMNS]
    # Field by field: a list of each (one container per field), not a tuple per span
    # (hundreds of containers, each counting towards the cyclic GC's next collection).
    traces = cast("list[TraceState]", [span.trace for span in spans])  # started spans
    sids = [span.sid for span in spans]
    parents = [span.parent_ref for span in spans]
    seqs = [span.seq for span in spans]
    raw_names = [span.name for span in spans]
    kinds = [span.kind for span in spans]
    starts = [span.start_ns // 1000 for span in spans]
    ends: list[Any] = [span.end_ns // 1000 for span in spans]  # 0: not ended
    errors = [span.error for span in spans]
    levelnos = [span.levelno for span in spans]
    codes = [span.code for span in spans]
    lastis = [span.lasti for span in spans]
    given_lines = [span.line for span in spans]
    thread_refs = [span.thread_ref for span in spans]
    task_refs = [span.task_ref for span in spans]
    attributes = [span._attributes for span in spans]
    events = [span.events for span in spans]
    handled = [span.handled_errors for span in spans]
    ref_src = [span.ref_src for span in spans]
    ref_dest = [span.ref_dest for span in spans]
    if forced_status is None and 0 not in ends:
        durations: list[Any] = list(map(operator.sub, ends, starts))
    else:
        ends = [end if end and forced_status is None else None for end in ends]
        durations = [
            None if end is None else end - start for start, end in zip(starts, ends, strict=True)
        ]
    first_day = min(starts) // _DAY_US
    if first_day == max(starts) // _DAY_US:
        dates = [utc_day(starts[0])] * count
    else:
        dates = list(map(utc_day, starts))
    none: list[Any] = [None] * count
    levels_of: list[int] | tuple[int, ...] = levelnos
    if errors.count(None) == count:
        statuses = [forced_status or STATUS_SUCCEEDED] * count
        error_types = error_messages = error_tracebacks = none
    else:
        statuses, error_types, error_messages, error_tracebacks = [], [], [], []
        levels_of = fixed = list(levelnos)
        for index, error in enumerate(errors):
            statuses.append(forced_status or (STATUS_SUCCEEDED if error is None else STATUS_FAILED))
            if error is None:
                error_types.append(None)
                error_messages.append(None)
                error_tracebacks.append(None)
                continue
            error_type, message, traceback_text = error
            error_types.append(error_type)
            # Converted here, off the caller's thread, bounded and scrubbed.
            error_messages.append(clean_text(message, scrub, MAX_TEXT_CHARS, ("error_message",)))
            error_tracebacks.append(
                clean_text(traceback_text, scrub, MAX_TRACEBACK_CHARS, ("error_traceback",))
            )
            if fixed[index] < 40 and statuses[-1] == STATUS_FAILED:
                fixed[index] = 40
    if levels_of.count(20) == count:
        levels = ["INFO"] * count
    else:
        levels = [_LEVEL_NAMES.get(levelno) or f"LEVEL{levelno}" for levelno in levels_of]
    names = _names(raw_names, scrub)
    tags_of = {
        trace: sanitize_tags(trace.tags, scrub) if trace.tags else _NO_ATTRIBUTES
        for trace in set(traces)
    }
    # A batch of one trace, or from one thread (a loop, a batch job): its values repeated.
    # (count compares identities here: traces and threads are equal only to themselves.)
    trace = traces[0]
    if traces.count(trace) == count:
        trace_ids: list[str] = [trace.trace_id] * count
        tags = [tags_of[trace]] * count
        links = [trace.links] * count
    else:
        trace_ids = [trace.trace_id for trace in traces]
        tags = list(map(tags_of.__getitem__, traces))
        links = [trace.links for trace in traces]
    files, lines, functions = _places(codes, lastis, given_lines)
    thread = thread_refs[0]
    if thread_refs.count(thread) == count:
        threads = [safe_str(thread.name)] * count
    else:
        thread_of = {thread: safe_str(thread.name) for thread in set(thread_refs)}
        threads = list(map(thread_of.__getitem__, thread_refs))
    if task_refs.count(None) == count:
        tasks = none
    else:
        tasks = [None if task is None else task.get_name() for task in task_refs]
    pid = _runtime.pid
    return [
        [settings.namespace] * count,
        dates,
        trace_ids,
        _hex_ids(sids),
        # Siblings (a loop's spans) share their parent: its id hexed once.
        [_hex_id(parents[0])] * count if parents.count(parents[0]) == count else _hex_ids(parents),
        seqs,
        names,
        kinds,
        statuses,
        levels,
        starts,
        ends,
        durations,
        files,
        lines,
        functions,
        [settings.app] * count,
        [settings.app_version] * count,
        [settings.host] * count,
        [pid] * count,
        threads,
        list(tasks),
        tags,
        [sanitize_attributes(items, scrub) if items else _NO_ATTRIBUTES for items in attributes],
        list(error_types),
        list(error_messages),
        list(error_tracebacks),
        [()] * count
        if handled.count(None) == count
        else [
            tuple([clean_handled_error(item, scrub) for item in list(errors)]) if errors else ()
            for errors in handled
        ],
        [()] * count if events.count(None) == count else clean_event_lists(events, scrub),
        links,
        [()] * count if ref_src.count(None) == count else [tuple(r) if r else () for r in ref_src],
        [()] * count
        if ref_dest.count(None) == count
        else [tuple(r) if r else () for r in ref_dest],
        list(none),
        [settings.schema_version] * count,
    ]


def _hex_ids(ids: Sequence[int | str | None]) -> list[Any]:
    """Span ids kept as ints on the caller as 16 hex characters (text and None kept)."""
    try:
        packed = _pack(f">{len(ids)}Q", *ids)
    except struct.error:  # a root's None, a remote parent's text
        return [_hex16(value) if value.__class__ is int else value for value in ids]
    return packed.hex(" ", 8).split(" ")


def _places(
    codes: Sequence[CodeType | None], lastis: Sequence[int], given_lines: Sequence[int | None]
) -> tuple[list[str | None], list[int | None], list[str | None]]:
    """The file, line and function columns: each distinct code location looked up once."""
    count = len(codes)
    first = codes[0]
    if first is codes[-1] and all(map(operator.is_, codes, repeat(first))):
        # One code object (a loop's spans, one decorated function): its file and
        # function repeated, a line per distinct instruction.
        files: list[str | None] = [first and first.co_filename] * count
        functions: list[str | None] = [first and first.co_qualname] * count
        if given_lines.count(None) == count:
            line_of = {
                lasti: None if first is None or lasti < 0 else _line_at(first, lasti)
                for lasti in set(lastis)
            }
            if len(line_of) == 1:
                return files, [line_of[lastis[0]]] * count, functions
            return files, list(map(line_of.__getitem__, lastis)), functions
        given = given_lines[0]
        if given is not None and given_lines.count(given) == count:
            return files, [given] * count, functions  # one decorated function's line
    else:
        code_ids = list(map(id, codes))
        code_of = dict(zip(code_ids, codes, strict=True))
        file_of = {key: code and code.co_filename for key, code in code_of.items()}
        function_of = {key: code and code.co_qualname for key, code in code_of.items()}
        files = list(map(file_of.__getitem__, code_ids))
        functions = list(map(function_of.__getitem__, code_ids))
    if given_lines.count(None) != count:  # decorators give the line
        return files, [
            line if line is not None or code is None or lasti < 0 else _line_at(code, lasti)
            for code, lasti, line in zip(codes, lastis, given_lines, strict=True)
        ], functions  # fmt: skip
    places = list(zip(code_ids, lastis, strict=True))
    line_of_place = {}
    for code_id, lasti in set(places):
        code = code_of[code_id]
        line_of_place[code_id, lasti] = None if code is None or lasti < 0 else _line_at(code, lasti)
    return files, list(map(line_of_place.__getitem__, places)), functions


def _names(raw_names: Sequence[Any], scrub: Any) -> list[str]:
    """The recorded names: text, non-empty, bounded and scrubbed; each distinct one once.

    Span("...") and log(name) take any object, and sinks need non-empty text (the
    receiver rejects an empty name); bounded and scrubbed like every stored text (a URL
    with a token, say).
    """

    def clean(raw: Any) -> str:
        return clean_text(safe_str(raw) or UNNAMED, scrub, MAX_NAME_CHARS, ("name",))

    if set(map(type, raw_names)) != {str}:
        # objects: each converted on its own (its str() may change, or raise), never
        # hashed or compared (their __hash__ or __eq__ may raise too)
        return [clean(raw) for raw in raw_names]
    first = raw_names[0]
    if raw_names.count(first) == len(raw_names):  # one name (a loop's spans): cleaned once
        return [clean(first)] * len(raw_names)
    cleaned = {raw: clean(raw) for raw in set(raw_names)}
    return list(map(cleaned.__getitem__, raw_names))


# -- helpers of the public API -----------------------------------------------------------


def _default_name(frame: FrameType | None) -> str:
    if frame is None:
        return "span"
    qualname = frame.f_code.co_qualname
    if qualname == "<module>":
        return str(frame.f_globals.get("__name__", "<module>"))
    return qualname


def _decorate(
    fn: F,
    name: str | None,
    attributes: dict[str, Any],
    options: tuple[bool, tuple[str, str] | None] | None,
    kind: str,
) -> F:
    import inspect

    if not callable(fn):
        raise TypeError(f"span() decorates functions, not {type(fn).__name__}")
    span_name = name if name is not None else getattr(fn, "__qualname__", repr(fn))
    code = getattr(inspect.unwrap(fn), "__code__", None)
    line = code.co_firstlineno if code is not None else None

    def new_span() -> Span:
        span = Span(span_name, dict(attributes) if attributes else None, kind=kind)
        span.options = options
        span.code = code
        span.line = line
        return span

    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            span = new_span()
            if not _guarded_start(span):
                return await fn(*args, **kwargs)
            span.token = current_span_var.set(span)
            try:
                result = await fn(*args, **kwargs)
            except BaseException as error:
                _exit(span, type(error), error, error.__traceback__)
                raise
            _exit(span, None, None, None)
            return result

        return cast(F, async_wrapper)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        # new_span(), _guarded_start() and _restore_context()'s usual case written out:
        # three Python calls less on every call of a decorated function.
        span = Span(span_name, dict(attributes) if attributes else None, kind=kind)
        span.options = options
        span.code = code
        span.line = line
        try:
            started = _start(span)
        except Exception as error:
            _internal_error(error)
            started = False
        if not started:
            return fn(*args, **kwargs)
        span.token = current_span_var.set(span)
        try:
            result = fn(*args, **kwargs)
        except BaseException as error:
            _exit(span, type(error), error, error.__traceback__)
            raise
        try:
            if not span.end_ns:
                _finish_plain(span)
        except Exception as error:
            _internal_error(error)
        finally:
            token = span.token
            if token.__class__ is Token:
                try:
                    current_span_var.reset(token)
                    span.token = _EXITED
                except ValueError:
                    _restore_context(span)  # left in another context: see there
        return result

    return cast(F, wrapper)


@overload
def span(name: F, /) -> F: ...
@overload
def span(
    name: Any = None, /, *, force_new_trace: bool = False, kind: str = "internal", **attributes: Any
) -> Span: ...
def span(
    name: Any = None, /, *, force_new_trace: bool = False, kind: str = "internal", **attributes: Any
) -> Any:
    """Open a span: ``with span("load", user=42):`` or ``@span`` / ``@span("name")``.

    Args:
        name: the span's name. Defaults to the decorated function's qualified name, or
            for ``with``, the calling function's name. Non-strings are converted with
            ``str()``. Passing a function (bare ``@span``) decorates it.
        force_new_trace: start a new trace that lists the current one in its ``links``.
        kind: ``internal`` (default), ``server``, ``client``, ``producer`` or ``consumer``.
        **attributes: attributes of this span (JSON-safe values are kept as they are,
            others as their ``repr``; sensitive keys are scrubbed).

    Returns:
        A ``Span`` usable as context manager and decorator, or the decorated function
        for bare ``@span``.
    """
    if name is not None and name.__class__ is not str and callable(name):
        options = (True, None) if force_new_trace else None
        return _decorate(name, None, attributes, options, kind)
    # Any other object is converted to text by the worker (``to_record``), where a
    # ``__str__`` that raises costs a placeholder name instead of the caller's block.
    # No attributes: None, not an empty dict kept alive with the span (each object a
    # queued span holds counts towards the cyclic GC's next collection).
    if force_new_trace or kind != "internal":
        return Span(name, attributes or None, force_new_trace=force_new_trace, kind=kind)
    return Span(name, attributes or None)


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
        _state.settings.tags.update({k: safe_str(v) for k, v in tags.items()})


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
