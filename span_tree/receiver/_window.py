"""Which span start times the receiver accepts: a sane window, few partitions per request.

A span is stored in the partition of its start day, so one request of spans spread
over years creates a file per day (thousands of small files every later query lists),
and a start time readers cannot place (year 1, year 148108, before 1970) would be
written and then never read. Both are refused with a 422 that names the spans.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from span_tree._record import iso_from_us
from span_tree.receiver._ingest import IngestError
from span_tree.receiver._limits import DEFAULT_MAX_FUTURE_DAYS, DEFAULT_MAX_PARTITIONS

DAY_US = 86_400 * 1_000_000
_NAMED = 10  # spans named in one error, at most


def check_window(
    starts: Sequence[int],
    *,
    max_age_days: float | None = None,
    max_future_days: float = DEFAULT_MAX_FUTURE_DAYS,
    max_partitions: int = DEFAULT_MAX_PARTITIONS,
    now_us: int | None = None,
) -> None:
    """Refuse the request when a span starts outside the window or days are too many.

    Args:
        starts: the start times (µs since the epoch) of the request's validated spans.
        max_age_days: oldest start accepted, in days before now (the store's retention);
            None: back to 1970-01-01, the earliest the store's layout holds.
        max_future_days: latest start accepted, in days after now (clock skew).
        max_partitions: most distinct start days (partitions) in one request.
        now_us: the current time in µs since the epoch (tests).

    Raises:
        IngestError: 422 with ``indices`` (the first few spans outside the window) and
            ``index`` (the first of them), or naming the partition limit.
    """
    if not starts:
        return
    bad = outside_window(
        starts, max_age_days=max_age_days, max_future_days=max_future_days, now_us=now_us
    )
    if not bad:
        check_partitions(starts, max_partitions)
        return
    earliest, latest = window_bounds(max_age_days, max_future_days, now_us)
    shown = ", ".join(str(index) for index in bad[:_NAMED])
    more = f" and {len(bad) - _NAMED} more" if len(bad) > _NAMED else ""
    raise IngestError(
        422,
        {
            "error": f"{len(bad)} spans start outside the accepted window "
            f"{iso_from_us(earliest)} .. {iso_from_us(latest)}: index {shown}{more}",
            "field": "start_time",
            "index": bad[0],
            "indices": bad[:_NAMED],
            "count": len(bad),
        },
    )


def window_bounds(
    max_age_days: float | None, max_future_days: float, now_us: int | None = None
) -> tuple[int, int]:
    """The earliest and latest accepted start, in µs since the epoch."""
    now = time.time_ns() // 1000 if now_us is None else now_us
    earliest = 0 if max_age_days is None else max(0, now - int(max_age_days * DAY_US))
    return earliest, now + int(max_future_days * DAY_US)


def outside_window(
    starts: Sequence[int],
    *,
    max_age_days: float | None = None,
    max_future_days: float = DEFAULT_MAX_FUTURE_DAYS,
    now_us: int | None = None,
) -> list[int]:
    """Indices of the start times outside the accepted window (see `check_window`)."""
    earliest, latest = window_bounds(max_age_days, max_future_days, now_us)
    if starts and earliest <= min(starts) and max(starts) <= latest:
        return []  # the usual request: two C-level passes, no per-span Python
    return [index for index, start in enumerate(starts) if not earliest <= start <= latest]


def check_partitions(starts: Sequence[int], max_partitions: int) -> None:
    """Refuse (422) a request whose spans start on more than ``max_partitions`` days."""
    if not starts or max(starts) // DAY_US - min(starts) // DAY_US < max_partitions:
        return  # the usual request: too few days apart to span more partitions
    days = {start // DAY_US for start in starts}
    if len(days) > max_partitions:
        raise IngestError(
            422,
            {
                "error": f"spans start on {len(days)} different days; one request may "
                f"hold at most {max_partitions} (send older spans in their own requests)",
                "field": "start_time",
                "limit": max_partitions,
            },
        )
