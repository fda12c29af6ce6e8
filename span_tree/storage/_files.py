"""Finding the span files of a store and telling valid ones from corrupt or foreign ones.

Readers build their views over exactly the valid files, so one truncated upload or a
stray text file in the store costs a reported problem, never a failed query. Span
files are immutable, so a file's verdict is cached by (path, size). Listing and the
supersession rule are in ``_listing``.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq

from span_tree.storage._listing import (
    REPLACES_KEY,
    FileProblem,
    SpanFiles,
    list_span_files,
)
from span_tree.storage._location import StoreLocation
from span_tree.storage.schema import SPAN_SCHEMA

__all__ = [
    "CORE_COLUMNS",
    "REPLACES_KEY",
    "FileProblem",
    "SpanFiles",
    "compatible",
    "list_span_files",
    "schema_problem",
    "span_files",
]

# Columns without which a file is not a span file. Files of an older schema version
# may lack other columns: readers fill those in (union_by_name / defaults).
CORE_COLUMNS: tuple[str, ...] = ("trace_id", "span_id", "name", "status", "start_time")


@dataclass(frozen=True)
class _Verdict:
    reason: str | None
    # False when the footer could not be read for a reason that may pass (network,
    # a file being replaced): such a verdict is not cached, the next listing looks again.
    final: bool = True


_cache: dict[tuple[str, str, int], _Verdict] = {}
_cache_lock = threading.Lock()
_CACHE_LIMIT = 200_000


def span_files(location: StoreLocation, *, namespace: str | None = None) -> SpanFiles:
    """List the span files of a store and check every footer. Never raises on a bad file.

    ``list_span_files`` plus a footer read of each listed file (cached by path and
    size): for maintenance and tests. Readers use ``list_span_files``, which reads no
    footer of an ordinary file.

    Args:
        location: the store.
        namespace: only this namespace's partitions.

    Returns:
        Valid files (Parquet whose footer reads, with the core columns in compatible
        types, inside a ``namespace=/date=`` directory) and the problems found.
        Hidden temporary files (writes in progress) are neither.

    Raises:
        OSError: the store itself cannot be listed.
    """
    listed = list_span_files(location, namespace=namespace)
    result = SpanFiles(problems=list(listed.problems))
    candidates = list(zip(listed.files, listed.sizes, strict=True))
    for (path, size), legacy, verdict in zip(
        candidates, listed.legacy, _verdicts(location, candidates), strict=True
    ):
        if verdict.reason is None:
            result.files.append(path)
            result.legacy.append(legacy)
            result.sizes.append(size)
        else:
            result.problems.append(FileProblem(location.url_of(path), verdict.reason))
    result.urls = [location.url_of(path) for path in result.files]
    return result


# On an object store each footer read is a network round trip that releases the GIL, so
# checking many new files at once overlaps their latency. On a local disk the footers
# come from the page cache and threads only add overhead (measured slower).
_CHECK_THREADS = 8
_LOCAL_PROTOCOLS = frozenset({"file", "local"})


def _verdicts(location: StoreLocation, candidates: list[tuple[str, int]]) -> list[_Verdict]:
    if location.protocol in _LOCAL_PROTOCOLS:
        return [_verdict(location, path, size) for path, size in candidates]
    with _cache_lock:
        unchecked = sum((location.protocol, path, size) not in _cache for path, size in candidates)
    if unchecked < 2 * _CHECK_THREADS:
        return [_verdict(location, path, size) for path, size in candidates]
    with ThreadPoolExecutor(_CHECK_THREADS, thread_name_prefix="span_tree-files") as pool:
        return list(pool.map(lambda item: _verdict(location, *item), candidates))


def _verdict(location: StoreLocation, path: str, size: int) -> _Verdict:
    key = (location.protocol, path, size)
    with _cache_lock:
        cached = _cache.get(key)
    if cached is not None:
        return cached
    verdict = _check_file(location, path, size)
    if not verdict.final:
        return verdict
    with _cache_lock:
        if len(_cache) >= _CACHE_LIMIT:
            _cache.clear()
        _cache[key] = verdict
    return verdict


def _check_file(location: StoreLocation, path: str, size: int) -> _Verdict:
    if size < 12:  # magic + footer length + magic
        return _Verdict(f"truncated or empty ({size} bytes)")
    try:
        with location.fs.open(path, "rb") as handle:
            schema = pq.ParquetFile(handle).schema_arrow
    except Exception as error:  # any failure to parse the footer means "not readable"
        # Only a footer Arrow read and rejected is bad for good; a failed read is not.
        final = isinstance(error, pa.ArrowInvalid)
        return _Verdict(f"unreadable Parquet footer: {_short(error)}", final=final)
    return _Verdict(schema_problem(schema))


def schema_problem(schema: pa.Schema) -> str | None:
    """Return why ``schema`` cannot be read as span rows, or ``None`` when it can."""
    missing = [name for name in CORE_COLUMNS if schema.get_field_index(name) < 0]
    if missing:
        return f"not a span file: missing column(s) {', '.join(missing)}"
    for span_field in SPAN_SCHEMA:
        index = schema.get_field_index(span_field.name)
        if index < 0:
            continue
        actual = schema.field(index).type
        if not compatible(actual, span_field.type):
            return f"column {span_field.name} has type {actual}, expected {span_field.type}"
    return None


def compatible(actual: pa.DataType, expected: pa.DataType) -> bool:
    """Tell whether a column of type ``actual`` reads as ``expected`` (same family)."""
    if actual == expected:
        return True
    if pa.types.is_string(expected) or pa.types.is_large_string(expected):
        return _is_text(actual)
    if pa.types.is_integer(expected):
        return bool(pa.types.is_integer(actual))
    if pa.types.is_timestamp(expected):
        return bool(pa.types.is_timestamp(actual))
    if pa.types.is_map(expected):
        return pa.types.is_map(actual) and _is_text(actual.key_type) and _is_text(actual.item_type)
    if pa.types.is_list(expected):
        if not (pa.types.is_list(actual) or pa.types.is_large_list(actual)):
            return False
        return compatible(actual.value_type, expected.value_type)
    if pa.types.is_struct(expected):
        if not pa.types.is_struct(actual):
            return False
        names = {actual.field(i).name: actual.field(i).type for i in range(actual.num_fields)}
        return all(
            compatible(names[expected.field(i).name], expected.field(i).type)
            for i in range(expected.num_fields)
            if expected.field(i).name in names
        )
    return False


def _is_text(data_type: pa.DataType) -> bool:
    return bool(
        pa.types.is_string(data_type)
        or pa.types.is_large_string(data_type)
        or getattr(pa.types, "is_string_view", lambda _: False)(data_type)
    )


def _short(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
