"""The store layout: ``spans/namespace=<ns>/date=<YYYY-MM-DD>/<name>.parquet``.

File names (see the package docstring): ``<batch-id>.b.parquet`` (a batch, written
idempotently), ``<id>.c.parquet`` (a compacted file) and any other ``*.parquet``
(legacy: written before batch identities; may hold duplicate rows).
"""

from __future__ import annotations

import glob
import os
import re
from typing import NamedTuple

from span_tree._atomic import TEMP_PREFIX
from span_tree.storage._location import StoreLocation

_PARTITION_RE = re.compile(r"namespace=(?P<namespace>[^/]+)/date=(?P<date>\d{4}-\d{2}-\d{2})$")
# A namespace becomes a directory name: keep it to characters every filesystem and
# object store accepts, and that hive partition parsing reads back unchanged.
_NAMESPACE_RE = re.compile(r"[A-Za-z0-9_.\-]+")  # fullmatch: "$" would allow a final \n


class Partition(NamedTuple):
    """One ``namespace=/date=`` directory of a store."""

    namespace: str
    date: str
    path: str


def check_namespace(namespace: str) -> str:
    """Return ``namespace`` if it is safe as a partition directory name.

    Raises:
        ValueError: it is empty, ``.``/``..`` or has characters other than letters,
            digits, ``_``, ``-`` and ``.``.
    """
    if not _NAMESPACE_RE.fullmatch(namespace) or namespace in (".", ".."):
        raise ValueError(f"namespace {namespace!r} must be letters, digits, '_', '-' or '.' only")
    return namespace


def safe_namespace(namespace: str) -> str:
    """Return ``namespace`` with characters unsafe in a directory name replaced by ``_``."""
    if _NAMESPACE_RE.fullmatch(namespace) and namespace not in (".", ".."):
        return namespace
    cleaned = re.sub(r"[^A-Za-z0-9_.\-]", "_", namespace).strip(".")
    return cleaned or "_"


def partition_dir(location: StoreLocation, namespace: str, date: str) -> str:
    """Return the fs path of the partition directory of ``namespace`` and ``date``."""
    return location.join("spans", f"namespace={check_namespace(namespace)}", f"date={date}")


def new_file_name() -> str:
    """Return a fresh legacy-style Parquet file name: a bare KSUID (annotations use it)."""
    from cyksuid.v2 import ksuid

    return f"{ksuid()}.parquet"


BATCH = "batch"
COMPACTED = "compacted"
LEGACY = "legacy"
_NAME_RE = re.compile(r"(?P<id>[0-9A-Za-z]{27})\.(?P<kind>[bc])\.parquet")


def new_batch_id() -> str:
    """Return a fresh batch identity: a KSUID (time-ordered, unique across processes)."""
    from span_tree._ids import new_trace_id

    return new_trace_id()


def is_batch_id(text: str) -> bool:
    """Tell whether ``text`` is usable as a batch identity (27 base62 characters)."""
    return bool(re.fullmatch(r"[0-9A-Za-z]{27}", text))


def batch_file_name(batch_id: str) -> str:
    """Return the file name of batch ``batch_id`` (the same in every partition).

    Raises:
        ValueError: ``batch_id`` is not 27 base62 characters.
    """
    if not is_batch_id(batch_id):
        raise ValueError(f"batch id {batch_id!r} must be 27 base62 characters (a KSUID)")
    return f"{batch_id}.b.parquet"


def compacted_file_name() -> str:
    """Return a fresh compacted file name (``<ksuid>.c.parquet``)."""
    return f"{new_batch_id()}.c.parquet"


def file_kind(name: str) -> str:
    """Return ``BATCH``, ``COMPACTED`` or ``LEGACY`` for a span file name (no directory)."""
    match = _NAME_RE.fullmatch(name)
    if match is None:
        return LEGACY
    return BATCH if match["kind"] == "b" else COMPACTED


def name_time(name: str) -> float | None:
    """The Unix time in a KSUID-named file (batch, compacted or bare KSUID); else None."""
    stem = name.removesuffix(".parquet").removesuffix(".b").removesuffix(".c")
    from span_tree._ids import is_trace_id, trace_id_timestamp

    if not is_trace_id(stem):
        return None
    return trace_id_timestamp(stem)


def parse_partition(location: StoreLocation, directory: str) -> Partition | None:
    """Parse a partition directory path; ``None`` when it is not one."""
    relative = directory.rstrip("/")[len(location.spans_root) :].strip("/")
    match = _PARTITION_RE.match(relative)
    if match is None:
        return None
    return Partition(match["namespace"], match["date"], directory.rstrip("/"))


def list_partitions(location: StoreLocation, *, namespace: str | None = None) -> list[Partition]:
    """Return the store's partitions (sorted), optionally of one namespace only."""
    spans_root = location.spans_root
    if namespace is not None and safe_namespace(namespace) != namespace:
        return []  # no such directory can exist, and its characters could be glob syntax
    pattern = f"namespace={namespace}" if namespace is not None else "namespace=*"
    if location.is_local:  # the standard library's glob: no fsspec import (start-up)
        found = glob.glob(f"{pattern}/date=*", root_dir=spans_root)
        directories = [f"{spans_root}/{path}" for path in found]
        isdir = os.path.isdir
    else:
        fs = location.fs
        if not fs.exists(spans_root):
            return []
        directories = fs.glob(f"{spans_root}/{pattern}/date=*")
        isdir = fs.isdir
    partitions = []
    for directory in directories:
        partition = parse_partition(location, directory)
        if partition is not None and isdir(directory):
            partitions.append(partition)
    return sorted(partitions)


def is_temporary(path: str) -> bool:
    """True for an in-progress write (a hidden temporary name)."""
    return path.rsplit("/", 1)[-1].startswith(TEMP_PREFIX)
