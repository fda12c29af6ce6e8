"""The store layout: ``spans/namespace=<ns>/date=<YYYY-MM-DD>/<ksuid>.parquet``."""

from __future__ import annotations

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
    """Return a fresh Parquet file name: a KSUID (time-ordered, unique across processes)."""
    from cyksuid.v2 import ksuid

    return f"{ksuid()}.parquet"


def parse_partition(location: StoreLocation, directory: str) -> Partition | None:
    """Parse a partition directory path; ``None`` when it is not one."""
    relative = directory.rstrip("/")[len(location.spans_root) :].strip("/")
    match = _PARTITION_RE.match(relative)
    if match is None:
        return None
    return Partition(match["namespace"], match["date"], directory.rstrip("/"))


def list_partitions(location: StoreLocation, *, namespace: str | None = None) -> list[Partition]:
    """Return the store's partitions (sorted), optionally of one namespace only."""
    fs = location.fs
    spans_root = location.spans_root
    if namespace is not None and safe_namespace(namespace) != namespace:
        return []  # no such directory can exist, and its characters could be glob syntax
    if not fs.exists(spans_root):
        return []
    pattern = f"namespace={namespace}" if namespace is not None else "namespace=*"
    partitions = []
    for directory in fs.glob(f"{spans_root}/{pattern}/date=*"):
        partition = parse_partition(location, directory)
        if partition is not None and fs.isdir(directory):
            partitions.append(partition)
    return sorted(partitions)


def is_temporary(path: str) -> bool:
    """True for an in-progress write (a hidden temporary name)."""
    return path.rsplit("/", 1)[-1].startswith(TEMP_PREFIX)
