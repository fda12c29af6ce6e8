"""Turn one ``POST /v1/spans`` body into validated span records, or one clear error.

All or nothing: every span of the body is validated before any is returned, so a bad
span at index 997 means nothing of the request is written.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

# orjson parses a 1,000-span body ~1.6x faster than json (4.2 ms vs 6.5 ms, measured in
# benchmarks/receiver.py's profile).
import orjson

from span_tree._record import (
    SPAN_COLUMNS,
    FinishedSpan,
    SpanRecordError,
    span_from_json_dict,
    tag_text,
)
from span_tree.receiver._bulk import bulk_columns
from span_tree.receiver._limits import DEFAULT_MAX_SPANS
from span_tree.receiver._typed import decode_body, typed_columns
from span_tree.storage._layout import safe_namespace
from span_tree.storage.schema import gc_paused, python_columns

_zlib: Any
try:  # zlib-ng inflates a 1,000-span body ~6x faster (0.21 vs 1.34 ms), same API and bytes
    from zlib_ng import zlib_ng as _zlib
except ImportError:  # pragma: no cover - a declared dependency; the standard zlib does the same
    _zlib = zlib

MAX_TAGS = 64
MAX_TAG_LENGTH = 1024


class IngestError(Exception):
    """A request the receiver refuses: HTTP ``status`` and a JSON-ready ``detail``."""

    def __init__(self, status: int, detail: dict[str, Any]) -> None:
        super().__init__(detail.get("error", ""))
        self.status = status
        self.detail = detail


def gunzip_bounded(data: bytes, *, limit: int) -> bytes:
    """Decompress a gzip body, refusing to produce more than ``limit`` bytes.

    Raises:
        IngestError: 413 when the decompressed body is over ``limit`` (a zip bomb
            costs at most ``limit`` bytes of memory), 422 when it is not valid gzip.
    """
    decompressor = _zlib.decompressobj(wbits=16 + _zlib.MAX_WBITS)
    try:
        out: bytes = decompressor.decompress(data, limit + 1)
        if len(out) > limit or decompressor.unconsumed_tail:
            raise IngestError(413, _error("body too large once decompressed", limit=limit))
        out += decompressor.flush()
    except (zlib.error, _zlib.error) as error:
        raise IngestError(422, _error(f"invalid gzip body: {error}", field="body")) from None
    if len(out) > limit:
        raise IngestError(413, _error("body too large once decompressed", limit=limit))
    if not decompressor.eof:
        raise IngestError(422, _error("truncated gzip body", field="body"))
    return out


class ParsedBody(NamedTuple):
    """A validated request body: its spans as columns and its batch identity (or None).

    ``columns`` holds one sequence per ``SPAN_COLUMNS`` entry, in that order (what the
    writer builds Arrow arrays from, without one record tuple per span); the typed path
    gives some of them as Arrow arrays already.
    """

    columns: Sequence[Sequence[Any]]
    batch_id: str | None

    @property
    def span_count(self) -> int:
        """How many spans the body holds."""
        return len(self.columns[0])

    @property
    def records(self) -> list[FinishedSpan]:
        """The spans as records."""
        columns = python_columns(self.columns)
        return list(map(FinishedSpan._make, zip(*columns, strict=True)))


_NO_COLUMNS: tuple[tuple[Any, ...], ...] = ((),) * len(SPAN_COLUMNS)


def parse_spans(
    body: bytes, *, namespace: str, max_spans: int = DEFAULT_MAX_SPANS
) -> list[FinishedSpan]:
    """Parse and validate a body ``{"tags": {...}, "spans": [...]}`` for ``namespace``.

    Body tags apply to every span; a span's own tags win on conflict. The namespace
    comes from the API key, never from the body.

    Raises:
        IngestError: 422 naming the field (and the index of the bad span), or 413
            when there are more than ``max_spans`` spans.
    """
    return parse_body(body, namespace=namespace, max_spans=max_spans).records


def parse_body(body: bytes, *, namespace: str, max_spans: int = DEFAULT_MAX_SPANS) -> ParsedBody:
    """``parse_spans``, also returning the body's ``"batch"`` id (a KSUID the client chose).

    Raises:
        IngestError: as ``parse_spans``; also 422 (field ``batch``) when ``batch`` is
            present but not 27 base62 characters.
    """
    # Decoding and validating allocate tens of thousands of containers and free none,
    # which only triggers useless cyclic-GC passes: pausing it saves ~15 % here
    # (gc_paused: the writer's pause, which also re-enables the GC of a child forked
    # meanwhile).
    with gc_paused():
        return _parse(body, namespace=namespace, max_spans=max_spans)


def _parse(body: bytes, *, namespace: str, max_spans: int) -> ParsedBody:
    typed = _parse_typed(body, namespace=namespace, max_spans=max_spans)
    if typed is not None:
        return typed
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise IngestError(422, _error(f"malformed JSON: {error}", field="body")) from None
    if not isinstance(document, dict):
        raise IngestError(422, _error("the body must be a JSON object", field="body"))
    spans = document.get("spans")
    if not isinstance(spans, list):
        raise IngestError(422, _error("must be a list of span objects", field="spans"))
    if len(spans) > max_spans:
        raise IngestError(413, _error("too many spans in one request", limit=max_spans))
    batch_id = _batch_id(document.get("batch"))
    tags = _body_tags(document.get("tags"))
    fast = bulk_columns(spans, namespace=namespace, tags=tags)
    if fast is not None:
        return ParsedBody(fast, batch_id)
    # Some span is unusual or wrong: validate one by one, naming the first bad span.
    records = parse_row_wise(spans, namespace=namespace, tags=tags)
    return ParsedBody(list(zip(*records, strict=True)) if records else _NO_COLUMNS, batch_id)


def _parse_typed(body: bytes, *, namespace: str, max_spans: int) -> ParsedBody | None:
    """The typed path (msgspec): ``None`` when the body needs the usual one."""
    decoded = decode_body(body)
    if decoded is None:
        return None
    spans, tags_value, batch_value = decoded
    if len(spans) > max_spans or safe_namespace(namespace) != namespace:
        return None  # the usual path refuses, or writes rows the records way
    # Checked as on the usual path, in its order: the same answer for a bad one.
    batch_id = _batch_id(batch_value)
    tags = _body_tags(tags_value)
    columns = typed_columns(spans, namespace=namespace, tags=tags)
    return None if columns is None else ParsedBody(columns, batch_id)


_BATCH_RE = re.compile(r"[0-9A-Za-z]{27}")


def _batch_id(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _BATCH_RE.fullmatch(value):
        raise IngestError(422, _error("must be a KSUID (27 letters and digits)", field="batch"))
    return value


def parse_row_wise(spans: list[Any], *, namespace: str, tags: dict[str, str]) -> list[FinishedSpan]:
    """Validate span dicts one by one (the reference ``bulk_records`` must agree with).

    Raises:
        IngestError: 422 naming the index and field of the first bad span.
    """
    records = []
    for index, item in enumerate(spans):
        try:
            if tags and isinstance(item, dict):
                own = item.get("tags")
                item = {**item, "tags": {**tags, **own} if isinstance(own, Mapping) else tags}
                if own is not None and not isinstance(own, Mapping):
                    raise SpanRecordError("tags", "must be an object")
            record = span_from_json_dict(item, namespace=namespace)
            _check_ranges(record)
            records.append(record)
        except SpanRecordError as error:
            raise IngestError(
                422,
                _error(
                    f"invalid span at index {index}: {error.field}: {error.reason}",
                    index=index,
                    field=error.field,
                    reason=error.reason,
                ),
            ) from None
        except (TypeError, ValueError, OverflowError, OSError) as error:
            # A value the validator let through but the record cannot hold (a huge
            # integer, an out-of-range date): still the client's fault, still a 422.
            raise IngestError(
                422,
                _error(f"invalid span at index {index}: {error}", index=index, field="span"),
            ) from None
    return records


_INT64 = (-(2**63), 2**63 - 1)
_INT32 = (-(2**31), 2**31 - 1)


def _check_ranges(record: FinishedSpan) -> None:
    """Refuse integers the Parquet columns cannot hold, before anything is written."""
    for name in ("seq", "start_time", "end_time", "duration_us", "pid", "written_at"):
        _in_range(getattr(record, name), _INT64, name)
    _in_range(record.line, _INT32, "line")
    _in_range(record.schema_version, _INT32, "spantree")
    for index, event in enumerate(record.events):
        _in_range(event.time, _INT64, f"events[{index}].time")
        _in_range(event.seq, _INT64, f"events[{index}].seq")
        _in_range(event.line, _INT32, f"events[{index}].line")
    for index, error in enumerate(record.handled_errors):
        _in_range(error.time, _INT64, f"handled_errors[{index}].time")


def _in_range(value: int | None, bounds: tuple[int, int], field: str) -> None:
    if value is not None and not bounds[0] <= value <= bounds[1]:
        raise SpanRecordError(field, "is out of range")


def _body_tags(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise IngestError(422, _error("must be an object", field="tags"))
    if len(value) > MAX_TAGS:
        raise IngestError(422, _error(f"at most {MAX_TAGS} tags", field="tags"))
    tags = {}
    for key, item in value.items():
        text = tag_text(item)  # non-strings converted, as a span's own tags are
        if len(key) > MAX_TAG_LENGTH or len(text) > MAX_TAG_LENGTH:
            raise IngestError(
                422, _error(f"tag keys and values must be <= {MAX_TAG_LENGTH}", field="tags")
            )
        tags[key] = text
    return tags


def _error(message: str, **extra: Any) -> dict[str, Any]:
    return {"error": message, **extra}
