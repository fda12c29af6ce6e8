"""Identifiers: KSUID trace ids, random span ids, and their W3C forms."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cyksuid.v2 import Ksuid

KSUID_LENGTH = 27
_KSUID_RE = re.compile(r"^[0-9A-Za-z]{27}$")
_HEX32_RE = re.compile(r"^[0-9a-f]{32}$")


_make_ksuid: Callable[[], Ksuid] | None = None


def new_trace_id() -> str:
    """Return a new trace id: a KSUID (27 base62 characters, time-ordered)."""
    global _make_ksuid
    if _make_ksuid is None:
        # Imported on first use: cyksuid is a third of `import span_tree`'s time.
        from cyksuid.v2 import ksuid

        _make_ksuid = ksuid
    return str(_make_ksuid())


def _parse_ksuid(text: str) -> Ksuid:
    from cyksuid.v2 import parse

    return parse(text)


def new_span_id() -> str:
    """Return a new span id: 16 hex characters (64 random bits)."""
    return os.urandom(8).hex()


def is_trace_id(text: str) -> bool:
    """Tell whether ``text`` looks like a KSUID trace id."""
    return bool(_KSUID_RE.match(text))


def is_w3c_trace_id(text: str) -> bool:
    """Tell whether ``text`` is a 32-hex W3C trace id."""
    return bool(_HEX32_RE.match(text))


def w3c_trace_id(trace_id: str) -> str:
    """Return the 32-hex W3C ``traceparent`` trace id of a KSUID trace id.

    It is the KSUID's 16-byte random payload, so it is unique per trace and the
    reverse lookup (``Store.trace(hex)``) finds the trace again.

    Raises:
        ValueError: ``trace_id`` is not a KSUID.
    """
    if not is_trace_id(trace_id):
        raise ValueError(f"not a KSUID trace id: {trace_id!r}")
    return bytes(_parse_ksuid(trace_id).payload).hex()


def trace_id_timestamp(trace_id: str) -> float:
    """Return the Unix time (seconds) encoded in a KSUID trace id."""
    if not is_trace_id(trace_id):
        raise ValueError(f"not a KSUID trace id: {trace_id!r}")
    return float(_parse_ksuid(trace_id).timestamp)


def trace_id_from_w3c(hex_id: str, unix_time: float | None = None) -> str:
    """Return the KSUID trace id that stores a foreign 128-bit (W3C / OTLP) trace id.

    The mapping is deterministic and reversible: the KSUID's 4-byte timestamp field is
    0 and its 16-byte payload is the W3C id, so every process (and every second) that
    sees the same foreign trace id stores its spans under the same trace, and
    ``w3c_trace_id`` gives the W3C id back. Such a trace id says nothing about the
    trace's date (readers look it up across dates).

    Args:
        hex_id: 32 lower-case hex characters.
        unix_time: build a KSUID with this timestamp instead (for fixtures that need
            a native-looking id of a given time); never used for foreign ids.

    Raises:
        ValueError: ``hex_id`` is not 32 lower-case hex characters.
    """
    from cyksuid.v2 import Ksuid, from_bytes

    if not is_w3c_trace_id(hex_id):
        raise ValueError(f"not a 32-hex W3C trace id: {hex_id!r}")
    if unix_time is None:
        return str(from_bytes(bytes(4) + bytes.fromhex(hex_id)))
    return str(Ksuid.from_timestamp_and_payload(int(unix_time), bytes.fromhex(hex_id)))
