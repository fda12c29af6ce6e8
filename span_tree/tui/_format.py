"""Small text helpers shared by the screens: times, ages, truncation."""

from __future__ import annotations

from datetime import UTC, datetime

from span_tree._display import format_duration

__all__ = ["ago", "clock", "format_duration", "truncate"]


def clock(micros: int | None, now_us: int) -> str:
    """Wall-clock time (UTC) of ``micros``: the time alone today, else date and time."""
    if micros is None:
        return "-"
    moment = datetime.fromtimestamp(micros / 1e6, tz=UTC)
    today = datetime.fromtimestamp(now_us / 1e6, tz=UTC).date()
    if moment.date() == today:
        return moment.strftime("%H:%M:%S")
    return moment.strftime("%Y-%m-%d %H:%M")


def ago(micros: int | None, now_us: int) -> str:
    """How long before ``now_us`` the moment ``micros`` was: ``12s``, ``5m``, ``3h``, ``2d``."""
    if micros is None:
        return "-"
    seconds = max(0, (now_us - micros) // 1_000_000)
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


def truncate(text: str, width: int) -> str:
    """``text`` cut to ``width`` cells with an ellipsis (one line: newlines become spaces)."""
    flat = " ".join(text.split())
    if width <= 0:
        return ""
    if len(flat) <= width:
        return flat
    return flat[: max(0, width - 1)] + "…"
