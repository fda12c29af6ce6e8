"""Bulk validation of a body's spans: the receiver's fast path.

``span_from_json_dict`` checks one span at a time, field by field (~13 µs a span, most
of the receiver's CPU). Here each field is checked for all spans at once: the values of
one key are gathered into a list and checked with C-level set and min/max operations,
timestamps are parsed by Arrow; nested events and handled errors are flattened and
checked the same way.

The fast path answers exactly like the row-wise validator or not at all: it accepts
only shapes it can prove valid (timestamps in the strict form the library prints,
exact ``str``/``int``/``dict``/``list`` types) and returns ``None`` for anything else,
so the caller runs the row-wise validator, which then accepts the body or names the
bad span. A property test pins ``bulk_records(...) == [span_from_json_dict(...)]``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import chain, islice
from operator import itemgetter
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from span_tree._record import (
    JSON_MARKER,
    SCHEMA_VERSION,
    SPAN_COLUMNS,
    Event,
    FinishedSpan,
    HandledError,
    SpanRecordError,
)
from span_tree.storage.schema import TIMESTAMP

_STATUSES = frozenset(("started", "succeeded", "failed"))
# The form ``span_to_json_dict`` prints (``iso_from_us``): UTC, "Z", 0 or 6 fraction
# digits, a four-digit year from 1000 on; anything else takes the row-wise path.
_ISO_Z = r"^[1-9][0-9]{3}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{6})?Z$"
_INT64 = (-(2**63), 2**63 - 1)
_INT32 = (-(2**31), 2**31 - 1)
_NONE = type(None)
_TEXT_TYPES = frozenset((str,))
_OPTIONAL_TEXT = frozenset((str, _NONE))
_OPTIONAL_INT = frozenset((int, _NONE))
_OPTIONAL_DICT = frozenset((dict, _NONE))
_OPTIONAL_LIST = frozenset((list, _NONE))

# Optional text fields and their defaults (as in span_from_json_dict).
_TEXT_DEFAULTS: dict[str, str | None] = {
    "parent_id": None,
    "kind": "internal",
    "level": "INFO",
    "file": None,
    "function": None,
    "app": "",
    "app_version": "",
    "host": "",
    "thread": "",
    "task": None,
    "error_type": None,
    "error_message": None,
    "error_traceback": None,
}


class _Fallback(Exception):
    """This body needs the row-wise validator."""


def bulk_records(
    items: list[Any], *, namespace: str, tags: dict[str, str]
) -> list[FinishedSpan] | None:
    """Validate and convert many span dicts at once.

    Args:
        items: the body's ``spans`` list.
        namespace: the namespace every span is stored under (the key's).
        tags: the body's tags; a span's own tags win on conflict.

    Returns:
        The records, equal to what ``span_from_json_dict`` gives span by span (with the
        body tags merged), or ``None`` when some span needs the row-wise validator
        (which is also the one that explains what is wrong).
    """
    columns = bulk_columns(items, namespace=namespace, tags=tags)
    if columns is None:
        return None
    return list(map(FinishedSpan._make, zip(*columns, strict=True)))


def bulk_columns(
    items: list[Any], *, namespace: str, tags: dict[str, str]
) -> list[list[Any]] | None:
    """``bulk_records`` as columns: one list per ``SPAN_COLUMNS`` entry, in that order.

    What the writer builds Arrow arrays from, without one record tuple per span.

    Returns:
        The columns, or ``None`` when some span needs the row-wise validator.
    """
    if not items or set(map(type, items)) != {dict}:
        return None
    try:
        columns = _columns(items, namespace, tags)
    except (_Fallback, SpanRecordError, pa.ArrowException, OverflowError, ValueError, TypeError):
        return None
    return [columns[name] for name in SPAN_COLUMNS]


def _columns(items: list[dict[str, Any]], namespace: str, tags: dict[str, str]) -> dict[str, Any]:
    count = len(items)
    field = _field_reader(items, _SPAN_KEYS)
    columns: dict[str, Any] = {"namespace": [namespace] * count}
    for key in ("trace_id", "span_id", "name", "status"):
        values = field(key)
        _require(set(map(type, values)) == _TEXT_TYPES and "" not in values)
        columns[key] = values
    _require(set(columns["status"]) <= _STATUSES)
    start_text: Sequence[Any] = field("start_time")
    start = _times(start_text, required=True)
    end = _times(field("end_time"), required=False)
    columns["start_time"] = start
    columns["end_time"] = end
    columns["date"] = [text[:10] for text in start_text]
    columns["written_at"] = _times(field("written_at"), required=False)
    duration = _ints(field("duration_us"), _INT64)
    if None in duration:
        duration = [
            e - s if d is None and e is not None else d
            for d, s, e in zip(duration, start, end, strict=True)
        ]
        _ints(duration, _INT64)
    columns["duration_us"] = duration
    for key, default in _TEXT_DEFAULTS.items():
        columns[key] = _text_column(field(key), default)
    columns["seq"] = _defaulted(_ints(field("seq"), _INT64), 0)
    columns["pid"] = _defaulted(_ints(field("pid"), _INT64), 0)
    columns["line"] = _ints(field("line"), _INT32)
    columns["schema_version"] = _defaulted(_ints(field(JSON_MARKER), _INT32), SCHEMA_VERSION)
    columns["attributes"] = _attributes(field("attributes"))
    columns["tags"] = _tags(_dicts(field("tags")), tags)
    for key in ("links", "ref_src", "ref_dest"):
        columns[key] = _string_tuples(field(key))
    columns["events"] = _nested(field("events"), _build_events)
    columns["handled_errors"] = _nested(field("handled_errors"), _build_handled_errors)
    return columns


_SPAN_KEYS = (
    "trace_id", "span_id", "name", "status", "start_time", "end_time", "written_at",
    "duration_us", *_TEXT_DEFAULTS, "seq", "pid", "line", JSON_MARKER, "attributes", "tags",
    "links", "ref_src", "ref_dest", "events", "handled_errors",
)  # fmt: skip
_EVENT_KEYS = ("time", "seq", "level", "logger", "message", "file", "line", "attributes")
_HANDLED_ERROR_KEYS = ("time", "type", "message", "traceback")


def _field_reader(
    dicts: list[dict[str, Any]], keys: tuple[str, ...]
) -> Callable[[str], Sequence[Any]]:
    """``key`` -> that key's value in every dict, ``None`` where it is absent.

    When every dict holds every key (what span-tree's own clients send), one C-level
    ``itemgetter`` call per dict and one transposition gather all of them, instead of
    a ``dict.get`` per key per dict (the validator's largest cost); otherwise key by key.
    """
    try:
        rows = list(map(itemgetter(*keys), dicts))
    except KeyError:  # some dict lacks a key (a client that leaves out defaults)
        return lambda key: [value.get(key) for value in dicts]
    if not rows:
        return lambda key: []
    by_key = dict(zip(keys, zip(*rows, strict=True), strict=True))
    return by_key.__getitem__


def _require(condition: bool) -> None:
    if not condition:
        raise _Fallback


def _times(values: Sequence[Any], *, required: bool) -> Sequence[Any]:
    kinds = set(map(type, values))
    if kinds == {_NONE}:
        _require(not required)
        return values
    _require(kinds <= (_TEXT_TYPES if required else _OPTIONAL_TEXT))
    text = pa.array(values, pa.string())
    _require(bool(pc.all(pc.match_substring_regex(text, _ISO_Z)).as_py()))
    return text.cast(TIMESTAMP).cast(pa.int64()).to_pylist()  # type: ignore[no-any-return]


def _ints(values: Sequence[Any], bounds: tuple[int, int]) -> Sequence[Any]:
    kinds = set(map(type, values))
    _require(kinds <= _OPTIONAL_INT)
    if int in kinds:
        present = [value for value in values if value is not None]
        _require(bounds[0] <= min(present) and max(present) <= bounds[1])
    return values


def _defaulted(values: Sequence[Any], default: int) -> Sequence[Any]:
    if None in values:
        return [default if value is None else value for value in values]
    return values


def _dicts(values: Sequence[Any]) -> Sequence[Any]:
    _require(set(map(type, values)) <= _OPTIONAL_DICT)
    return values


def _attributes(values: Sequence[Any]) -> Sequence[Any]:
    """Attribute dicts as they are (parsed from this body, so nobody else holds them)."""
    values = _dicts(values)
    if None in values:
        return [{} if value is None else value for value in values]
    return values


def _tags(values: Sequence[Any], body_tags: dict[str, str]) -> list[dict[str, str]]:
    _require(all(type(item) is str for value in values if value for item in value.values()))
    if body_tags:
        return [{**body_tags, **value} if value else dict(body_tags) for value in values]
    return [dict(value) if value else {} for value in values]


def _string_tuples(values: Sequence[Any]) -> list[tuple[str, ...]]:
    _require(set(map(type, values)) <= _OPTIONAL_LIST)
    _require(all(type(item) is str for value in values if value for item in value))
    return [tuple(value) if value else () for value in values]


def _text_column(values: Sequence[Any], default: str | None) -> Sequence[Any]:
    _require(set(map(type, values)) <= _OPTIONAL_TEXT)
    if default is not None and None in values:
        return [default if value is None else value for value in values]
    return values


def _nested(values: Sequence[Any], build: Any) -> Sequence[tuple[Any, ...]]:
    """A list-of-structs field (events, handled_errors) converted for all spans at once."""
    _require(set(map(type, values)) <= _OPTIONAL_LIST)
    if not any(values):
        return [()] * len(values)
    flat = list(chain.from_iterable(value for value in values if value))
    _require(set(map(type, flat)) == {dict})
    converted = iter(build(flat))
    return [tuple(islice(converted, len(value))) if value else () for value in values]


def _build_events(flat: list[dict[str, Any]]) -> list[Event]:
    field = _field_reader(flat, _EVENT_KEYS)
    columns = {
        "time": _times(field("time"), required=True),
        "seq": _defaulted(_ints(field("seq"), _INT64), 0),
        "level": _text_column(field("level"), "INFO"),
        "logger": _text_column(field("logger"), ""),
        "message": _text_column(field("message"), ""),
        "file": _text_column(field("file"), None),
        "line": _ints(field("line"), _INT32),
        "attributes": _attributes(field("attributes")),
    }
    return list(map(Event._make, zip(*(columns[name] for name in Event._fields), strict=True)))


def _build_handled_errors(flat: list[dict[str, Any]]) -> list[HandledError]:
    field = _field_reader(flat, _HANDLED_ERROR_KEYS)
    columns = {
        "time": _times(field("time"), required=True),
        "type": _text_column(field("type"), ""),
        "message": _text_column(field("message"), ""),
        "traceback": _text_column(field("traceback"), ""),
    }
    rows = zip(*(columns[name] for name in HandledError._fields), strict=True)
    return list(map(HandledError._make, rows))
