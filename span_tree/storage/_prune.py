"""``prune``: retention by deleting whole partitions older than a cut-off date."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from span_tree.storage._layout import Partition, list_partitions
from span_tree.storage._location import StoreLocation

_AGE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks", "": "days"}


def parse_age(text: str) -> timedelta:
    """Parse an age such as ``30d``, ``12h``, ``2w``, ``90m``, ``45s`` or ``1.5d``.

    The one reading of ages: ``prune --older-than`` and the query filters
    (``--since 2h``) both use it. A bare number is days.

    Raises:
        ValueError: the text is not a number with an optional s/m/h/d/w unit.
    """
    match = _AGE_RE.match(text)
    if match is None:
        raise ValueError(f"age {text!r} must look like 30d, 12h, 2w, 90m or 45s")
    return timedelta(**{_UNITS[match[2]]: float(match[1])})


@dataclass
class PruneResult:
    """The partitions a prune removed (or would remove, in a dry run)."""

    cutoff: str
    partitions: list[Partition] = field(default_factory=list)


def prune(
    location: StoreLocation,
    *,
    older_than: timedelta,
    namespace: str | None = None,
    dry_run: bool = False,
    now: datetime | None = None,
    on_partition: Callable[[Partition], None] | None = None,
) -> PruneResult:
    """Delete every partition whose date is before ``now - older_than``.

    Args:
        location: the store.
        older_than: the retention period.
        namespace: only this namespace.
        dry_run: list what would go without deleting anything.
        now: the current time (tests pin it).
        on_partition: called for each partition removed (progress reporting).

    Returns:
        The cut-off date and the partitions removed.
    """
    moment = now or datetime.now(UTC)
    cutoff = (moment - older_than).date().isoformat()
    result = PruneResult(cutoff=cutoff)
    for partition in list_partitions(location, namespace=namespace):
        if partition.date >= cutoff:
            continue
        if not dry_run:
            location.fs.rm(partition.path, recursive=True)
        result.partitions.append(partition)
        if on_partition is not None:
            on_partition(partition)
    return result
