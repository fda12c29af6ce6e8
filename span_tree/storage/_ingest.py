"""``ingest``: turn collected jsonl span lines back into store files.

Log collectors mix span lines with everything else a program printed, and may prefix
each line (timestamps, stream names). A span line is found by the jsonl sink's marker
(``{"spantree": <version>, ...``); every other line is skipped and counted. A span
printed twice (started, then finished) keeps both versions, in line order.

Each batch of lines is written under a batch id made from a hash of its span lines
(from the marker on, so collector prefixes do not matter): ingesting the same input
again (same ``batch_size``) puts the same files again and adds no rows.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from span_tree._record import JSON_MARKER, FinishedSpan, SpanRecordError, span_from_json_dict
from span_tree.storage._location import StoreLocation
from span_tree.storage._writer import write_spans

_MARKER = '{"' + JSON_MARKER + '"'
_DECODER = json.JSONDecoder()
DEFAULT_BATCH = 100_000
MAX_REPORTED = 20


@dataclass
class IngestResult:
    """What an ingest read and wrote.

    Attributes:
        spans: span versions written.
        files: store files written.
        skipped_lines: lines that are not span lines (other log output).
        invalid_lines: span lines that failed validation.
        errors: ``(line number, reason)`` of the first invalid lines.
    """

    spans: int = 0
    files: list[str] = field(default_factory=list)
    skipped_lines: int = 0
    invalid_lines: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)


def parse_span_line(line: str, *, namespace: str | None = None) -> FinishedSpan | None:
    """Return the span of a jsonl span line, or ``None`` for any other line.

    Raises:
        SpanRecordError: the line carries the span marker but is not a valid span.
    """
    start = line.find(_MARKER)
    if start < 0:
        return None
    try:
        record, _ = _DECODER.raw_decode(line, start)
    except json.JSONDecodeError as error:
        raise SpanRecordError("line", f"invalid JSON: {error.msg}") from None
    return span_from_json_dict(record, namespace=namespace)


def ingest_lines(
    location: StoreLocation,
    lines: Iterable[str],
    *,
    namespace: str | None = None,
    batch_size: int = DEFAULT_BATCH,
    on_batch: Callable[[int], None] | None = None,
) -> IngestResult:
    """Write the span lines among ``lines`` into the store.

    Args:
        location: the store.
        lines: text lines (a file, stdin...).
        namespace: store every span under this namespace instead of its own.
        batch_size: spans per write (bounds memory on big dumps).
        on_batch: called with the number of spans after each write (progress).

    Returns:
        Counts of spans written, lines skipped and invalid, and the files written.

    Raises:
        OSError: the store could not be written; spans of earlier batches are kept.
    """
    result = IngestResult()
    batch: list[FinishedSpan] = []
    digest = hashlib.sha256()
    for number, line in enumerate(lines, start=1):
        try:
            span = parse_span_line(line, namespace=namespace)
        except SpanRecordError as error:
            result.invalid_lines += 1
            if len(result.errors) < MAX_REPORTED:
                result.errors.append((number, str(error)))
            continue
        if span is None:
            result.skipped_lines += int(bool(line.strip()))
            continue
        batch.append(span)
        digest.update(line[line.find(_MARKER) :].rstrip().encode())
        digest.update(b"\n")
        if len(batch) >= batch_size:
            _flush(location, batch, _content_batch_id(batch, digest), result, on_batch)
            batch = []
            digest = hashlib.sha256()
    if batch:
        _flush(location, batch, _content_batch_id(batch, digest), result, on_batch)
    return result


# KSUID timestamps count from 2014-05-13; earlier times do not fit the field.
_KSUID_EPOCH = 1_400_000_000


def _content_batch_id(batch: list[FinishedSpan], digest: Any) -> str:
    """A KSUID for a batch of ingested lines: its newest start second, then the hash."""
    return content_batch_id(max((span.start_time or 0) for span in batch), digest)


def content_batch_id(newest_start_us: int, digest: Any) -> str:
    """A KSUID for a batch given by content: its newest start second, then the hash."""
    from cyksuid.v2 import Ksuid

    newest = newest_start_us // 1_000_000
    seconds = min(max(newest, _KSUID_EPOCH + 1), int(time.time()))
    return str(Ksuid.from_timestamp_and_payload(seconds, digest.digest()[:16]))


def _flush(
    location: StoreLocation,
    batch: list[FinishedSpan],
    batch_id: str,
    result: IngestResult,
    on_batch: Callable[[int], None] | None,
) -> None:
    result.files.extend(write_spans(location, batch, batch_id=batch_id))
    result.spans += len(batch)
    if on_batch is not None:
        on_batch(len(batch))
