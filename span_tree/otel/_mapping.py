"""OTLP -> span-tree records: the inbound half of the one OTel mapping.

The README's "OpenTelemetry" section has this mapping as a table; ``_outbound.py`` is
its inverse (span-tree -> OTLP), and a round-trip test pins that the two agree.

- Resource: ``service.name`` -> app, ``service.version`` -> app_version, ``host.name``
  -> host, ``process.pid`` -> pid, ``deployment.environment.name`` (or the older
  ``deployment.environment``) -> tag ``env``; every other resource attribute -> a tag.
- Span: 16-byte trace id -> the KSUID whose payload it is (``trace_id_from_w3c``; a
  ``spantree=<KSUID>`` trace-state entry naming that payload keeps the exact KSUID), 8-byte
  span ids -> 16 hex, kind, status ERROR -> ``failed`` with the (escaped, else last)
  ``exception`` event in the error columns, other ``exception`` events -> handled
  errors, other events -> events, links -> linked trace ids, attributes -> attributes
  (bytes as base64 text). ``code.*``, ``thread.name`` and ``spantree.*`` attributes fill
  the columns of the same meaning and are not repeated in ``attributes``.
- Causal order (``seq``): a ``spantree.seq`` attribute when the span came from
  span-tree, else the start time in microseconds (events: their time), so children and
  log lines of a foreign trace interleave by time.

A span that cannot be stored (zero or malformed ids, missing or impossible times) is
rejected on its own with a reason; the others of the request are kept (OTLP partial
success).
"""

from __future__ import annotations

import base64
import functools
import re
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from cyksuid.v2 import from_bytes as ksuid_from_bytes

from span_tree._ids import is_trace_id, new_span_id, new_trace_id, w3c_trace_id
from span_tree._record import (
    SCHEMA_VERSION,
    STATUS_FAILED,
    STATUS_SUCCEEDED,
    Event,
    FinishedSpan,
    HandledError,
    utc_day,
)
from span_tree._sanitize import (
    MAX_ITEMS,
    MAX_MESSAGE_CHARS,
    MAX_NAME_CHARS,
    MAX_TEXT_CHARS,
    MAX_TRACEBACK_CHARS,
    SCRUBBED,
    Scrubber,
    clean_text,
    json_safe,
    sanitize_tags,
    scrubber,
    truncate,
)

KIND_NAMES = {0: "internal", 1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}
KIND_CODES = {name: code for code, name in KIND_NAMES.items() if code}
STATUS_CODE_ERROR = 2

SERVICE_NAME = "service.name"
SERVICE_VERSION = "service.version"
HOST_NAME = "host.name"
PROCESS_PID = "process.pid"
ENVIRONMENT_KEYS = ("deployment.environment.name", "deployment.environment")
FILE_KEYS = ("code.file.path", "code.filepath")
LINE_KEYS = ("code.line.number", "code.lineno")
FUNCTION_KEYS = ("code.function.name", "code.function")
THREAD_NAME = "thread.name"
HTTP_STATUS_KEYS = ("http.response.status_code", "http.status_code")
SEQ = "spantree.seq"
TASK = "spantree.task"
REF_SRC = "spantree.ref_src"
REF_DEST = "spantree.ref_dest"
EVENT_LEVEL = "spantree.level"
EVENT_LOGGER = "spantree.logger"
SCOPE_NAME = "otel.scope.name"
SCOPE_VERSION = "otel.scope.version"
# The instrumentation scope span-tree's own OTLP sink sends under (not repeated as an
# attribute on the way back in, so a round trip is exact).
OWN_SCOPE = "span_tree"
EXCEPTION_EVENT = "exception"
LOG_SPAN_NAME = "otel.logs"
LOG_SPAN_KIND = "log"
TRACESTATE_VENDOR = "spantree"

_SPAN_RESERVED = frozenset(
    (*FILE_KEYS, *LINE_KEYS, *FUNCTION_KEYS, THREAD_NAME, SEQ, TASK, REF_SRC, REF_DEST)
)
_EVENT_RESERVED = frozenset((*FILE_KEYS, *LINE_KEYS, SEQ, EVENT_LEVEL, EVENT_LOGGER))

# Accepted span times: after the epoch, before 2200 (later is a broken clock or a
# value in the wrong unit; it would also land in a meaningless partition).
MIN_TIME_NS = 1
MAX_TIME_NS = 7_258_118_400 * 10**9  # 2200-01-01T00:00:00Z
MAX_REASONS = 5  # distinct rejection reasons quoted in the partial-success message

_ZERO_TRACE = bytes(16)
_NO_TIME = bytes(4)  # the timestamp field of a KSUID that stores a foreign trace id
_ZERO_SPAN = bytes(8)
_SEVERITY_LEVELS = ("DEBUG",) * 8 + ("INFO",) * 4 + ("WARNING",) * 4 + ("ERROR",) * 4
_SEVERITY_TEXT = re.compile(r"^(trace|debug|info|warn|warning|error|fatal|critical)", re.I)
_LEVEL_ORDER = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}
_LEVEL_NAMES = {number: name for name, number in _LEVEL_ORDER.items()}


# Records and events built with a C call (tuple.__new__) instead of the NamedTuple's
# keyword ``__new__``: the receiver builds one per span and event received.
_new_span = functools.partial(tuple.__new__, FinishedSpan)
_new_event = functools.partial(tuple.__new__, Event)


class Rejected(ValueError):
    """One span or log record cannot be stored; the message says why."""


class Mapped(NamedTuple):
    """The records of one OTLP request, and what was refused (partial success)."""

    records: list[FinishedSpan]
    accepted: int  # spans, or log records, stored
    rejected: int
    reasons: list[str]

    def message(self) -> str:
        """The partial-success ``error_message`` ("" when nothing was rejected)."""
        return rejection_message(self.rejected, self.reasons)


def rejection_message(rejected: int, reasons: list[str]) -> str:
    """A partial-success ``error_message``: how many were rejected, and why."""
    if not rejected:
        return ""
    return f"{rejected} rejected: " + "; ".join(reasons)


# -- values ------------------------------------------------------------------------------


def any_value(value: Any) -> Any:
    """An OTLP ``AnyValue`` as JSON-able data (bytes as base64 text, empty as None)."""
    which = value.WhichOneof("value")
    if which == "string_value":
        return value.string_value
    if which == "int_value":
        return value.int_value
    if which == "bool_value":
        return value.bool_value
    if which == "double_value":
        return value.double_value
    if which == "array_value":
        return [any_value(item) for item in value.array_value.values]
    if which == "kvlist_value":
        return {item.key: any_value(item.value) for item in value.kvlist_value.values}
    if which == "bytes_value":
        return base64.b64encode(value.bytes_value).decode("ascii")
    return None


def key_values(items: Iterable[Any]) -> dict[str, Any]:
    """A repeated ``KeyValue`` as a dict (a repeated key keeps its last value)."""
    values: dict[str, Any] = {}
    for item in items:
        value = item.value
        which = value.WhichOneof("value")
        # The common scalar types inline: this runs for every attribute received.
        if which == "string_value":
            values[item.key] = value.string_value
        elif which == "int_value":
            values[item.key] = value.int_value
        else:
            values[item.key] = any_value(value)
    return values


_PLAIN = frozenset((int, float, bool, type(None)))
_MAX_ATTRIBUTES = MAX_ITEMS * 10
Scrub = re.Pattern[str] | Scrubber


def clean_attributes(attributes: dict[str, Any], scrub: Scrub) -> dict[str, Any]:
    """``sanitize_attributes`` for decoded OTLP values, in place (the receiver's hot
    path): sensitive keys and secret-looking text scrubbed, long text truncated, nested
    values bounded, at most 1,000 keys."""
    active = scrubber(scrub)
    for key, value in attributes.items():
        hit, replacement = active.scrub_key(key, value, (key,))
        if hit:
            attributes[key] = replacement
        elif value.__class__ is str:
            attributes[key] = active.text(truncate(value), (key,))
        elif value.__class__ not in _PLAIN:
            attributes[key] = json_safe(value, 0, active, (key,))
    return _at_most_attributes(attributes)


def _at_most_attributes(attributes: dict[str, Any]) -> dict[str, Any]:
    """The first ``_MAX_ATTRIBUTES`` keys, and how many more were dropped, if any."""
    if len(attributes) > _MAX_ATTRIBUTES:
        kept = dict(list(attributes.items())[:_MAX_ATTRIBUTES])
        kept["_truncated_attributes"] = len(attributes) - _MAX_ATTRIBUTES
        return kept
    return attributes


class _Texts:
    """One request's cleaned texts: each distinct name, message and attribute text is
    bounded and scrubbed once (spans of one request repeat them). Only without a scrub
    callback, whose answer may depend on where the text is; with one, every text is
    cleaned where it occurs, as before."""

    def __init__(self, scrub: Scrubber) -> None:
        self.scrub = scrub
        self.cached = scrub.callback is None
        self.names: dict[str, str] = {}
        self.messages: dict[str, str] = {}
        self.values: dict[str, str] = {}
        self.keys: dict[str, bool] = {}

    def name(self, text: str) -> str:
        """``clean_text`` of a span name."""
        if not self.cached:
            return clean_text(text, self.scrub, MAX_NAME_CHARS, ("name",))
        found = self.names.get(text)
        if found is None:
            found = self.names[text] = clean_text(text, self.scrub, MAX_NAME_CHARS, ("name",))
        return found

    def message(self, text: str) -> str:
        """``clean_text`` of an event message."""
        if not self.cached:
            return clean_text(text, self.scrub, MAX_MESSAGE_CHARS, ("events", "message"))
        found = self.messages.get(text)
        if found is None:
            found = clean_text(text, self.scrub, MAX_MESSAGE_CHARS, ("events", "message"))
            self.messages[text] = found
        return found

    def attributes(self, attributes: dict[str, Any]) -> dict[str, Any]:
        """``clean_attributes``, with each key's verdict and each text's form found once."""
        if not self.cached:
            return clean_attributes(attributes, self.scrub)
        keys = self.keys
        values = self.values
        active = self.scrub
        for key, value in attributes.items():
            hit = keys.get(key)
            if hit is None:
                hit = keys[key] = active.search(key)
            if hit:
                attributes[key] = SCRUBBED
            elif value.__class__ is str:
                found = values.get(value)
                if found is None:
                    found = values[value] = active.text(truncate(value), (key,))
                attributes[key] = found
            elif value.__class__ not in _PLAIN:
                attributes[key] = json_safe(value, 0, active, (key,))
        return _at_most_attributes(attributes)

    def key_values(self, items: Iterable[Any]) -> dict[str, Any]:
        """``attributes(key_values(items))`` in one pass (only when ``cached``), without
        the bound on the number of keys (``_at_most_attributes``: the caller's, once
        it has added its own keys)."""
        keys = self.keys
        values = self.values
        active = self.scrub
        cleaned: dict[str, Any] = {}
        for item in items:
            key = item.key
            hit = keys.get(key)
            if hit is None:
                hit = keys[key] = active.search(key)
            if hit:
                cleaned[key] = SCRUBBED
                continue
            value = item.value
            found = value.string_value  # text is the usual value: no WhichOneof for it
            if not found:  # another type, or empty text
                which = value.WhichOneof("value")
                if which == "int_value":
                    cleaned[key] = value.int_value
                    continue
                if which != "string_value":
                    found = any_value(value)
            if found.__class__ is str:
                text = values.get(found)
                if text is None:
                    text = values[found] = active.text(truncate(found), (key,))
                cleaned[key] = text
            elif found.__class__ in _PLAIN:
                cleaned[key] = found
            else:
                cleaned[key] = json_safe(found, 0, active, (key,))
        return cleaned


def _tag_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    import json

    return json.dumps(value, ensure_ascii=False, default=str)


class Resource(NamedTuple):
    """What a resource gives every span under it."""

    app: str
    app_version: str
    host: str
    pid: int
    tags: dict[str, str]


def map_resource(attributes: Mapping[str, Any], scrub: Scrub) -> Resource:
    """The span columns and tags of an OTLP resource's attributes."""
    rest = dict(attributes)
    app = rest.pop(SERVICE_NAME, None)
    version = rest.pop(SERVICE_VERSION, None)
    host = rest.pop(HOST_NAME, None)
    pid = rest.pop(PROCESS_PID, None)
    env = None
    for key in ENVIRONMENT_KEYS:
        value = rest.pop(key, None)
        if env is None and value is not None:
            env = value
    tags = {key: _tag_text(value) for key, value in rest.items()}
    if env is not None:
        tags["env"] = _tag_text(env)
    return Resource(
        app=truncate(_tag_text(app), 256) if app is not None else "",
        app_version=truncate(_tag_text(version), 256) if version is not None else "",
        host=truncate(_tag_text(host), 256) if host is not None else "",
        pid=pid if isinstance(pid, int) and 0 <= pid < 2**63 else 0,
        tags=sanitize_tags(tags, scrub),
    )


# -- ids -----------------------------------------------------------------------------------


class TraceIds:
    """16-byte OTel trace ids -> KSUID trace ids, cached for one request."""

    def __init__(self) -> None:
        self._cache: dict[tuple[bytes, str], str] = {}

    def ksuid(self, raw: bytes, trace_state: str = "") -> str:
        """The KSUID of an OTel trace id (the exact one a ``spantree=`` entry names).

        Raises:
            Rejected: not 16 bytes, or all zero.
        """
        key = (raw, trace_state)
        found = self._cache.get(key)
        if found is not None:
            return found
        if len(raw) != 16 or raw == _ZERO_TRACE:
            raise Rejected("invalid trace_id (must be 16 bytes, not all zero)")
        hex_id = raw.hex()
        # trace_id_from_w3c(hex_id), without going back from hex to bytes
        ksuid = _ksuid_from_state(trace_state, hex_id) or str(ksuid_from_bytes(_NO_TIME + raw))
        if len(self._cache) > 100_000:
            self._cache.clear()
        self._cache[key] = ksuid
        return ksuid


def _ksuid_from_state(trace_state: str, hex_id: str) -> str | None:
    if TRACESTATE_VENDOR not in trace_state:
        return None
    for member in trace_state.split(","):
        key, sep, value = member.strip().partition("=")
        if sep and key == TRACESTATE_VENDOR and is_trace_id(value):
            try:
                if w3c_trace_id(value) == hex_id:
                    return value
            except ValueError:
                return None
    return None


def span_id_hex(raw: bytes, field: str, *, optional: bool = False) -> str | None:
    """An 8-byte span id as 16 hex (None for an absent optional id).

    Raises:
        Rejected: not 8 bytes, or all zero where an id is required.
    """
    if optional and (not raw or raw == _ZERO_SPAN):
        return None
    if len(raw) != 8 or raw == _ZERO_SPAN:
        raise Rejected(f"invalid {field} (must be 8 bytes, not all zero)")
    return raw.hex()


def _time_us(nanos: int, field: str) -> int:
    if not MIN_TIME_NS <= nanos < MAX_TIME_NS:
        raise Rejected(f"{field} out of range (nanoseconds since 1970, before 2200)")
    return nanos // 1000


# -- spans ---------------------------------------------------------------------------------


def _pop_first(attributes: dict[str, Any], keys: Iterable[str]) -> Any:
    found = None
    for key in keys:
        value = attributes.pop(key, None)
        if found is None and value is not None:
            found = value
    return found


def _text_or_none(value: Any, limit: int = 1024) -> str | None:
    if value is None:
        return None
    return truncate(value if isinstance(value, str) else str(value), limit)


def _int_or_none(value: Any, bounds: tuple[int, int]) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and bounds[0] <= value <= bounds[1]:
        return value
    return None


_INT64 = (-(2**63), 2**63 - 1)
_INT32 = (-(2**31), 2**31 - 1)


def _strings(value: Any) -> tuple[str, ...]:
    if isinstance(value, list):
        return tuple(item for item in value if isinstance(item, str))
    return ()


def _event(event: Any, name: str, texts: _Texts) -> Event:
    time = _time_us(event.time_unix_nano, "event time_unix_nano")
    attributes = key_values(event.attributes)
    if _EVENT_RESERVED.isdisjoint(attributes):  # an event of another tracer: no columns
        cleaned = texts.attributes(attributes) if attributes else {}
        return _new_event((time, time, "INFO", "", texts.message(name), None, None, cleaned))
    seq = _int_or_none(attributes.pop(SEQ, None), _INT64)
    level = attributes.pop(EVENT_LEVEL, None)
    logger = attributes.pop(EVENT_LOGGER, None)
    file = _pop_first(attributes, FILE_KEYS)
    line = _pop_first(attributes, LINE_KEYS)
    return _new_event(
        (
            time,
            time if seq is None else seq,
            truncate(level, 32) if isinstance(level, str) and level else "INFO",
            _text_or_none(logger) or "",
            texts.message(name),
            _text_or_none(file),
            _int_or_none(line, _INT32),
            texts.attributes(attributes) if attributes else {},
        )
    )


class _Exception(NamedTuple):
    time: int
    type: str
    message: str
    traceback: str
    escaped: bool


def _exception(event: Any, scrub: Scrub) -> _Exception:
    attributes = key_values(event.attributes)
    escaped = attributes.get("exception.escaped")
    return _Exception(
        time=_time_us(event.time_unix_nano, "event time_unix_nano"),
        type=_text_or_none(attributes.get("exception.type"), 512) or "",
        message=clean_text(
            _tag_text(attributes.get("exception.message") or ""),
            scrub,
            MAX_TEXT_CHARS,
            ("error_message",),
        ),
        traceback=clean_text(
            _tag_text(attributes.get("exception.stacktrace") or ""),
            scrub,
            MAX_TRACEBACK_CHARS,
            ("error_traceback",),
        ),
        escaped=escaped is True or escaped == "true",
    )


def map_span(
    span: Any,
    resource: Resource,
    scope: tuple[str, str],
    *,
    namespace: str,
    trace_ids: TraceIds,
    scrub: Scrub,
    texts: _Texts | None = None,
) -> FinishedSpan:
    """One OTLP ``Span`` as a span-tree record (``texts``: the request's cleaned texts).

    Raises:
        Rejected: the span cannot be stored (the reason names the field).
    """
    if texts is None:
        texts = _Texts(scrubber(scrub))
    trace_id = trace_ids.ksuid(span.trace_id, span.trace_state)
    # Valid ids inline (every span has them); span_id_hex explains a bad one.
    raw = span.span_id
    span_id = raw.hex() if len(raw) == 8 and raw != _ZERO_SPAN else span_id_hex(raw, "span_id")
    raw = span.parent_span_id
    parent_id = (
        raw.hex()
        if len(raw) == 8 and raw != _ZERO_SPAN
        else span_id_hex(raw, "parent_span_id", optional=True)
    )
    start = _time_us(span.start_time_unix_nano, "start_time_unix_nano")
    end = _time_us(span.end_time_unix_nano, "end_time_unix_nano")
    if end < start:
        raise Rejected("end_time_unix_nano is before start_time_unix_nano")
    attributes = key_values(span.attributes)
    seq = line = None
    file = function = task = None
    thread = ""
    ref_src: tuple[str, ...] = ()
    ref_dest: tuple[str, ...] = ()
    # Most spans of other tracers carry none of these: one set test instead of 12 pops.
    if not _SPAN_RESERVED.isdisjoint(attributes):
        seq = _int_or_none(attributes.pop(SEQ, None), _INT64)
        file = _text_or_none(_pop_first(attributes, FILE_KEYS))
        line = _int_or_none(_pop_first(attributes, LINE_KEYS), _INT32)
        function = _text_or_none(_pop_first(attributes, FUNCTION_KEYS))
        thread = _text_or_none(attributes.pop(THREAD_NAME, None), 256) or ""
        task = _text_or_none(attributes.pop(TASK, None), 256)
        ref_src = _strings(attributes.pop(REF_SRC, None))
        ref_dest = _strings(attributes.pop(REF_DEST, None))
    if scope[0] and scope[0] != OWN_SCOPE:
        attributes.setdefault(SCOPE_NAME, scope[0])
        if scope[1]:
            attributes.setdefault(SCOPE_VERSION, scope[1])
    events: list[Event] = []
    exceptions: list[_Exception] = []
    level = 20
    span_events = span.events
    for item in span_events if span_events else ():
        event_name = item.name
        if event_name == EXCEPTION_EVENT:
            exceptions.append(_exception(item, texts.scrub))
        else:
            event = _event(item, event_name, texts)
            events.append(event)
            if event.level != "INFO":  # INFO is the least a span's level is
                level = max(level, _LEVEL_ORDER.get(event.level, 20))
    failed = span.status.code == STATUS_CODE_ERROR
    error: tuple[str, str, str | None] | None = None
    if failed:
        escaped = [index for index, exc in enumerate(exceptions) if exc.escaped]
        if exceptions:
            chosen = exceptions.pop(escaped[-1] if escaped else len(exceptions) - 1)
            message = chosen.message or clean_text(
                span.status.message, texts.scrub, MAX_TEXT_CHARS, ("error_message",)
            )
            error = (chosen.type or "Error", message, chosen.traceback)
        else:
            error = (
                _error_type(attributes),
                clean_text(span.status.message, texts.scrub, MAX_TEXT_CHARS, ("error_message",)),
                None,
            )
        level = max(level, 40)
    span_links = span.links
    links = (
        tuple(trace_ids.ksuid(link.trace_id, link.trace_state) for link in span_links)
        if span_links
        else ()
    )
    return _new_span(
        (
            namespace,
            utc_day(start),
            trace_id,
            span_id,
            parent_id,
            start if seq is None else seq,
            texts.name(span.name) or "<unnamed>",
            KIND_NAMES.get(span.kind, "internal"),
            STATUS_FAILED if failed else STATUS_SUCCEEDED,
            _level_name(level),
            start,
            end,
            end - start,
            file,
            line,
            function,
            resource.app,
            resource.app_version,
            resource.host,
            resource.pid,
            thread,
            task,
            resource.tags,
            texts.attributes(attributes) if attributes else {},
            error[0] if error else None,
            error[1] if error else None,
            error[2] if error else None,
            tuple(
                HandledError(exc.time, exc.type, exc.message, exc.traceback) for exc in exceptions
            )
            if exceptions
            else (),
            tuple(events),
            links,
            ref_src,
            ref_dest,
            None,
            SCHEMA_VERSION,
        )
    )


def _error_type(attributes: Mapping[str, Any]) -> str:
    """The error type of a failed span without an exception event: ``error.type``, else
    ``HTTP <status>`` of an HTTP span (OTel sets ERROR on 5xx), else ``Error``."""
    kind = _text_or_none(attributes.get("error.type"), 512)
    if kind:
        return kind
    for key in HTTP_STATUS_KEYS:
        status = attributes.get(key)
        if isinstance(status, int | str) and str(status).isdigit():
            return f"HTTP {status}"
    return "Error"


def _level_name(levelno: int) -> str:
    name = _LEVEL_NAMES.get(levelno)
    if name is not None:
        return name
    for name, number in reversed(_LEVEL_ORDER.items()):
        if levelno >= number:
            return name
    return "DEBUG"


def _note(reasons: list[str], reason: str) -> None:
    if reason not in reasons and len(reasons) < MAX_REASONS:
        reasons.append(reason)


def records_from_traces(request: Any, *, namespace: str, scrub: Scrub) -> Mapped:
    """The records of an ``ExportTraceServiceRequest``; bad spans are rejected one by one."""
    records: list[FinishedSpan] = []
    rejected = 0
    reasons: list[str] = []
    trace_ids = TraceIds()
    scrub = scrubber(scrub)  # once per request: it caches verdicts on keys and short texts
    texts = _Texts(scrub)
    for resource_spans in request.resource_spans:
        resource = map_resource(key_values(resource_spans.resource.attributes), scrub)
        for scope_spans in resource_spans.scope_spans:
            scope = (scope_spans.scope.name, scope_spans.scope.version)
            for span in scope_spans.spans:
                try:
                    records.append(
                        map_span(
                            span,
                            resource,
                            scope,
                            namespace=namespace,
                            trace_ids=trace_ids,
                            scrub=scrub,
                            texts=texts,
                        )
                    )
                except Rejected as error:
                    rejected += 1
                    _note(reasons, str(error))
    return Mapped(records, len(records), rejected, reasons)


def count_spans(request: Any) -> int:
    """How many spans an ``ExportTraceServiceRequest`` holds."""
    return sum(
        len(scope_spans.spans)
        for resource_spans in request.resource_spans
        for scope_spans in resource_spans.scope_spans
    )


# -- logs ----------------------------------------------------------------------------------


def _severity(record: Any) -> str:
    number = record.severity_number
    if 1 <= number <= len(_SEVERITY_LEVELS):
        return _SEVERITY_LEVELS[number - 1]
    if number > len(_SEVERITY_LEVELS):
        return "CRITICAL"
    match = _SEVERITY_TEXT.match(record.severity_text or "")
    if match is None:
        return "INFO"
    word = match.group(1).lower()
    return {
        "trace": "DEBUG",
        "debug": "DEBUG",
        "info": "INFO",
        "warn": "WARNING",
        "warning": "WARNING",
        "error": "ERROR",
        "fatal": "CRITICAL",
        "critical": "CRITICAL",
    }[word]


def _log_event(record: Any, logger: str, scrub: Scrub) -> Event:
    nanos = record.time_unix_nano or record.observed_time_unix_nano
    time = _time_us(nanos, "time_unix_nano")
    attributes = key_values(record.attributes)
    body = any_value(record.body) if record.HasField("body") else None
    message = body if isinstance(body, str) else ("" if body is None else _tag_text(body))
    if record.event_name:
        attributes.setdefault("event.name", record.event_name)
    file = _pop_first(attributes, FILE_KEYS)
    line = _pop_first(attributes, LINE_KEYS)
    attributes.pop(FUNCTION_KEYS[0], None)
    attributes.pop(FUNCTION_KEYS[1], None)
    return Event(
        time=time,
        seq=time,
        level=_severity(record),
        logger=truncate(logger, 256),
        message=clean_text(message, scrub, MAX_MESSAGE_CHARS, ("events", "message")),
        file=_text_or_none(file),
        line=_int_or_none(line, _INT32),
        attributes=clean_attributes(attributes, scrub) if attributes else {},
    )


def records_from_logs(request: Any, *, namespace: str, scrub: Scrub) -> Mapped:
    """The records of an ``ExportLogsServiceRequest``.

    Logs live inside spans in span-tree. OTel sends a span and its logs separately (in
    either order), and a span row once written is never rewritten, so the log records
    of one span (same trace and span id, one request) become one row of their own: a
    child span of that span named ``otel.logs`` (kind ``log``) starting at the first
    record and ending at the last, holding the records as its events. Every view and
    the trace tree then show them under their span, whichever arrived first. Records
    without a span id go, per resource, into one root span ``otel.logs`` of a trace of
    their own (with a trace id: that trace), so they are listed and searchable too.
    """
    records: list[FinishedSpan] = []
    rejected = 0
    reasons: list[str] = []
    trace_ids = TraceIds()
    scrub = scrubber(scrub)
    for resource_logs in request.resource_logs:
        resource = map_resource(key_values(resource_logs.resource.attributes), scrub)
        groups: dict[tuple[str | None, str | None], list[Event]] = {}
        for scope_logs in resource_logs.scope_logs:
            logger = scope_logs.scope.name
            for record in scope_logs.log_records:
                try:
                    # All-zero ids mean "no trace" for a log record (OTLP), not an error.
                    raw_trace = record.trace_id
                    has_trace = raw_trace and raw_trace != _ZERO_TRACE
                    trace_id = trace_ids.ksuid(raw_trace) if has_trace else None
                    span_id = span_id_hex(record.span_id, "span_id", optional=True)
                    event = _log_event(record, logger, scrub)
                except Rejected as error:
                    rejected += 1
                    _note(reasons, str(error))
                    continue
                groups.setdefault((trace_id, span_id), []).append(event)
        for (trace_id, parent_id), events in groups.items():
            records.append(_log_span(events, trace_id, parent_id, resource, namespace))
    accepted = sum(len(record.events) for record in records)
    return Mapped(records, accepted, rejected, reasons)


def _log_span(
    events: list[Event],
    trace_id: str | None,
    parent_id: str | None,
    resource: Resource,
    namespace: str,
) -> FinishedSpan:
    events.sort(key=lambda event: event.time)
    start, end = events[0].time, events[-1].time
    level = max(_LEVEL_ORDER.get(event.level, 20) for event in events)
    return FinishedSpan(
        namespace=namespace,
        date=utc_day(start),
        trace_id=trace_id or new_trace_id(),
        span_id=new_span_id(),
        parent_id=parent_id,
        seq=start,
        name=LOG_SPAN_NAME,
        kind=LOG_SPAN_KIND,
        status=STATUS_SUCCEEDED,
        level=_level_name(level),
        start_time=start,
        end_time=end,
        duration_us=end - start,
        file=None,
        line=None,
        function=None,
        app=resource.app,
        app_version=resource.app_version,
        host=resource.host,
        pid=resource.pid,
        thread="",
        task=None,
        tags=resource.tags,
        attributes={"log_records": len(events)},
        error_type=None,
        error_message=None,
        error_traceback=None,
        handled_errors=(),
        events=tuple(events),
        links=(),
        ref_src=(),
        ref_dest=(),
        written_at=None,
        schema_version=SCHEMA_VERSION,
    )


def count_log_records(request: Any) -> int:
    """How many log records an ``ExportLogsServiceRequest`` holds."""
    return sum(
        len(scope_logs.log_records)
        for resource_logs in request.resource_logs
        for scope_logs in resource_logs.scope_logs
    )
