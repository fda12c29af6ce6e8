"""Annotations of error groups, appended as small Parquet files.

Each ``annotate`` call writes one new file ``<store>/annotations/<ksuid>.parquet``
(one PUT on an object store, nothing is ever rewritten), and the ``annotations`` view
keeps the newest row per fingerprint. That is what makes them safe on S3 and with many
writers.
"""

from __future__ import annotations

import io
import time
from typing import Any

from span_tree.analytics._source import ANNOTATIONS_DIR, annotation_schema

STATUSES: tuple[str, ...] = ("crash", "silenced", "open")
LEVELS: tuple[str, ...] = ("OK", "WARN", "ALERT")
# The status of an annotation that removes the ones before it (``annotate --clear``):
# files are never rewritten, so removing is appending this; the view hides it.
CLEARED = "cleared"


def check_annotation(fingerprint: str, status: str, level: str) -> None:
    """Validate an annotation's fields.

    Raises:
        ValueError: empty fingerprint, or status/level not one of the allowed values.
    """
    if not fingerprint or not fingerprint.strip():
        raise ValueError("fingerprint must not be empty")
    if status not in STATUSES:
        raise ValueError(f"status must be one of {', '.join(STATUSES)}, not {status!r}")
    if level not in LEVELS:
        raise ValueError(f"level must be one of {', '.join(LEVELS)}, not {level!r}")


def _author() -> str:
    import getpass

    try:
        return getpass.getuser()
    except Exception:  # no user name in some containers; an annotation still works
        return ""


def write_annotation(
    location: Any, *, fingerprint: str, status: str, level: str, note: str
) -> tuple[str, int]:
    """Append one annotation file to the store.

    Returns:
        The engine-readable path of the new file and its ``created_at`` (µs).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from span_tree.storage._layout import new_file_name
    from span_tree.storage._writer import write_bytes_atomic

    created_at = time.time_ns() // 1000
    schema = annotation_schema()
    table = pa.table(
        {
            "fingerprint": [fingerprint],
            "status": [status],
            "level": [level],
            "note": [note],
            "author": [_author()],
            "created_at": pa.array([created_at], schema.field("created_at").type),
        },
        schema=schema,
    )
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    final = f"{location.join(ANNOTATIONS_DIR)}/{new_file_name()}"
    write_bytes_atomic(location, final, buffer.getvalue())
    return location.url_of(final), created_at
