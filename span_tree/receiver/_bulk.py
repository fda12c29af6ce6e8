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
    columns: dict[str, Any] = {"namespace": [namespace] * count}
    for key in ("trace_id", "span_id", "name", "status"):
        values = [item.get(key) for item in items]
        _require(set(map(type, values)) == _TEXT_TYPES and "" not in values)
        columns[key] = values
    _require(set(columns["status"]) <= _STATUSES)
    start_text: list[Any] = [item.get("start_time") for item in items]
    start = _times(start_text, required=True)
    end = _times([item.get("end_time") for item in items], required=False)
    columns["start_time"] = start
    columns["end_time"] = end
    columns["date"] = [text[:10] for text in start_text]
    columns["written_at"] = _times([item.get("written_at") for item in items], required=False)
    duration = _ints([item.get("duration_us") for item in items], _INT64)
    if None in duration:
        duration = [
            e - s if d is None and e is not None else d
            for d, s, e in zip(duration, start, end, strict=True)
        ]
        _ints(duration, _INT64)
    columns["duration_us"] = duration
    for key, default in _TEXT_DEFAULTS.items():
        columns[key] = _text_column(items, key, default)
    columns["seq"] = _defaulted(_ints([item.get("seq") for item in items], _INT64), 0)
    columns["pid"] = _defaulted(_ints([item.get("pid") for item in items], _INT64), 0)
    columns["line"] = _ints([item.get("line") for item in items], _INT32)
    columns["schema_version"] = _defaulted(
        _ints([item.get(JSON_MARKER) for item in items], _INT32), SCHEMA_VERSION
    )
    columns["attributes"] = [dict(value) if value else {} for value in _dicts(items, "attributes")]
    columns["tags"] = _tags(_dicts(items, "tags"), tags)
    for key in ("links", "ref_src", "ref_dest"):
        columns[key] = _string_tuples([item.get(key) for item in items])
    columns["events"] = _nested(items, "events", _build_events)
    columns["handled_errors"] = _nested(items, "handled_errors", _build_handled_errors)
    return columns


def _require(condition: bool) -> None:
    if not condition:
        raise _Fallback


def _times(values: list[Any], *, required: bool) -> list[Any]:
    kinds = set(map(type, values))
    if kinds == {_NONE}:
        _require(not required)
        return values
    _require(kinds <= (_TEXT_TYPES if required else _OPTIONAL_TEXT))
    text = pa.array(values, pa.string())
    _require(bool(pc.all(pc.match_substring_regex(text, _ISO_Z)).as_py()))
    return text.cast(TIMESTAMP).cast(pa.int64()).to_pylist()  # type: ignore[no-any-return]


def _ints(values: list[Any], bounds: tuple[int, int]) -> list[Any]:
    kinds = set(map(type, values))
    _require(kinds <= _OPTIONAL_INT)
    if int in kinds:
        present = [value for value in values if value is not None]
        _require(bounds[0] <= min(present) and max(present) <= bounds[1])
    return values


def _defaulted(values: list[Any], default: int) -> list[Any]:
    if None in values:
        return [default if value is None else value for value in values]
    return values


def _dicts(items: list[dict[str, Any]], key: str) -> list[Any]:
    values = [item.get(key) for item in items]
    _require(set(map(type, values)) <= _OPTIONAL_DICT)
    return values


def _tags(values: list[Any], body_tags: dict[str, str]) -> list[dict[str, str]]:
    _require(all(type(item) is str for value in values if value for item in value.values()))
    if body_tags:
        return [{**body_tags, **value} if value else dict(body_tags) for value in values]
    return [dict(value) if value else {} for value in values]


def _string_tuples(values: list[Any]) -> list[tuple[str, ...]]:
    _require(set(map(type, values)) <= _OPTIONAL_LIST)
    _require(all(type(item) is str for value in values if value for item in value))
    return [tuple(value) if value else () for value in values]


def _text_column(dicts: list[dict[str, Any]], key: str, default: str | None) -> list[Any]:
    values = [item.get(key) for item in dicts]
    _require(set(map(type, values)) <= _OPTIONAL_TEXT)
    if default is not None and None in values:
        return [default if value is None else value for value in values]
    return values


def _nested(items: list[dict[str, Any]], key: str, build: Any) -> list[tuple[Any, ...]]:
    """A list-of-structs field (events, handled_errors) converted for all spans at once."""
    values = [item.get(key) for item in items]
    _require(set(map(type, values)) <= _OPTIONAL_LIST)
    if not any(values):
        return [()] * len(values)
    flat = [entry for value in values if value for entry in value]
    _require(set(map(type, flat)) == {dict})
    converted = iter(build(flat))
    return [tuple(next(converted) for _ in range(len(value))) if value else () for value in values]


def _build_events(flat: list[dict[str, Any]]) -> list[Event]:
    columns = {
        "time": _times([entry.get("time") for entry in flat], required=True),
        "seq": _defaulted(_ints([entry.get("seq") for entry in flat], _INT64), 0),
        "level": _text_column(flat, "level", "INFO"),
        "logger": _text_column(flat, "logger", ""),
        "message": _text_column(flat, "message", ""),
        "file": _text_column(flat, "file", None),
        "line": _ints([entry.get("line") for entry in flat], _INT32),
        "attributes": [dict(value) if value else {} for value in _dicts(flat, "attributes")],
    }
    return list(map(Event._make, zip(*(columns[name] for name in Event._fields), strict=True)))


def _build_handled_errors(flat: list[dict[str, Any]]) -> list[HandledError]:
    columns = {
        "time": _times([entry.get("time") for entry in flat], required=True),
        "type": _text_column(flat, "type", ""),
        "message": _text_column(flat, "message", ""),
        "traceback": _text_column(flat, "traceback", ""),
    }
    rows = zip(*(columns[name] for name in HandledError._fields), strict=True)
    return list(map(HandledError._make, rows))
