"""Make attribute values safe for every sink: scrubbed, JSON-able, bounded."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

SCRUBBED = "[scrubbed]"
DEFAULT_SCRUB_KEYS: tuple[str, ...] = (
    "password",
    "passwd",
    "secret",
    "token",
    "authorization",
    "api_key",
    "apikey",
    "api-key",
    "cookie",
    "session",
    "credential",
    "private_key",
    "csrf",
    "jwt",
)
MAX_TEXT_CHARS = 4_096
MAX_MESSAGE_CHARS = 65_536  # log messages may legitimately be long (SQL, payloads)
MAX_ITEMS = 100
MAX_DEPTH = 4
TRUNCATED = "…[truncated {} chars]"

_PRIMITIVES = (bool, int, float, type(None))
# Lone UTF-16 surrogates (``os.fsdecode`` of a non-UTF-8 file name) cannot be encoded
# as UTF-8: JSON and Parquet writers refuse the whole batch that holds one.
_SURROGATE = re.compile("[\ud800-\udfff]")
REPLACEMENT = "\ufffd"


def scrub_pattern(keys: Iterable[str]) -> re.Pattern[str]:
    """Compile the case-insensitive pattern that marks a key as sensitive."""
    return re.compile("|".join(re.escape(key) for key in keys), re.IGNORECASE)


def truncate(text: str, limit: int = MAX_TEXT_CHARS) -> str:
    """Cut ``text`` to ``limit`` characters with a marker saying how much was cut."""
    if len(text) <= limit:
        return text
    return text[:limit] + TRUNCATED.format(len(text) - limit)


def json_safe(value: Any, depth: int = 0, scrub: re.Pattern[str] | None = None) -> Any:
    """Return ``value`` as JSON-serialisable data: unknown objects become their repr.

    Args:
        value: any object.
        depth: nesting level of ``value`` (deeper containers become their repr).
        scrub: when given, values under sensitive keys of nested mappings are scrubbed.
    """
    if isinstance(value, str):
        return truncate(value)
    if isinstance(value, _PRIMITIVES):
        return value
    if depth < MAX_DEPTH:
        if isinstance(value, Mapping):
            items = [(str(k), v) for k, v in list(value.items())[:MAX_ITEMS]]
            return {
                k: SCRUBBED
                if scrub is not None and scrub.search(k)
                else json_safe(v, depth + 1, scrub)
                for k, v in items
            }
        if isinstance(value, (list, tuple, set, frozenset)):
            return [json_safe(v, depth + 1, scrub) for v in list(value)[:MAX_ITEMS]]
    try:
        text = repr(value)
    except Exception as error:  # a broken __repr__ must not break tracing
        text = f"<unrepresentable {type(value).__name__}: {type(error).__name__}>"
    return truncate(text)


def sanitize_attributes(attributes: Mapping[str, Any], scrub: re.Pattern[str]) -> dict[str, Any]:
    """Scrub sensitive keys and make every value JSON-safe and bounded."""
    clean: dict[str, Any] = {}
    for key, value in attributes.items():
        name = key if isinstance(key, str) else str(key)
        if scrub.search(name):
            clean[name] = SCRUBBED
        elif isinstance(value, _PRIMITIVES):
            clean[name] = value
        else:
            # Nested mappings ({"db": {"password": ...}}) are scrubbed too.
            clean[name] = json_safe(value, 0, scrub)
        if len(clean) >= MAX_ITEMS * 10 and len(attributes) > len(clean):
            clean["_truncated_attributes"] = len(attributes) - len(clean)
            break
    return clean


def sanitize_tags(tags: Mapping[str, Any], scrub: re.Pattern[str]) -> dict[str, str]:
    """Tags are string to string; sensitive ones are scrubbed."""
    return {
        str(k): SCRUBBED if scrub.search(str(k)) else truncate(str(v), 256) for k, v in tags.items()
    }


def encodable(value: Any) -> Any:
    """``value`` with every lone surrogate in its text (keys too) replaced by U+FFFD.

    Walks strings, mappings, lists and tuples (named tuples keep their type); other
    values are returned as they are. For the slow path of a sink that failed to encode.
    """
    if isinstance(value, str):
        return _SURROGATE.sub(REPLACEMENT, value)
    if isinstance(value, Mapping):
        return {encodable(k): encodable(v) for k, v in value.items()}
    if isinstance(value, tuple):
        items = [encodable(item) for item in value]
        make = getattr(type(value), "_make", None)
        return make(items) if make is not None else tuple(items)
    if isinstance(value, list):
        return [encodable(item) for item in value]
    return value
