"""Listing a store's span files: only the partitions asked for, no footer of an ordinary file.

What a listing costs: one directory listing per namespace and per partition asked for
(or one recursive listing of the whole store when no date range is given), plus the
footer of each *compacted* file (``<id>.c.parquet``), read once per process (files are
immutable, so it is cached by path and size). Ordinary files are judged by their name
only; a corrupt one is found by the reader that opens it.

The supersession rule lives here, in ``resolve_compacted``: it is the one place that
decides which files of a partition a reader reads (see the package docstring).
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date as Date
from typing import Any, TypeVar

from span_tree.storage._layout import (
    COMPACTED,
    LEGACY,
    file_kind,
    is_temporary,
    parse_partition,
    safe_namespace,
)
from span_tree.storage._location import StoreLocation

# Key-value metadata of a compacted file: the names (comma separated) of every file
# whose rows it holds, its direct inputs and, transitively, their inputs. A reader
# never reads a file named there once the compacted file is accepted, even if a crash
# left it behind or a late retry wrote it again.
REPLACES_KEY = b"span_tree.replaces"
# "1" when some input was a legacy file (so the compacted file may share rows with
# another legacy-derived file of its partition).
LEGACY_KEY = b"span_tree.legacy"

T = TypeVar("T")
R = TypeVar("R")
_DATE_DIR = re.compile(r"date=(\d{4}-\d{2}-\d{2})")


@dataclass(frozen=True)
class FileProblem:
    """A file in the store that readers skip, and why."""

    path: str
    reason: str


@dataclass
class SpanFiles:
    """The span files a reader should read, in path order, and the skipped ones.

    Attributes:
        files: fs paths of the files to read, sorted.
        urls: the same files as URLs for DuckDB / polars / pyarrow (``location.url_of``).
        legacy: per file (aligned with ``files``): True when it may hold duplicate rows
            (written before batch identities existed, or compacted from such files);
            only partitions holding such files need the full newest-version rule.
        sizes: per file, its size in bytes (as listed).
        problems: files skipped, with the reason (outside the layout, not Parquet,
            an unreadable compacted footer...).
    """

    files: list[str] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)
    legacy: list[bool] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    problems: list[FileProblem] = field(default_factory=list)

    @property
    def legacy_urls(self) -> list[str]:
        """The URLs of the files that may hold duplicate rows."""
        return [url for url, legacy in zip(self.urls, self.legacy, strict=True) if legacy]


@dataclass(frozen=True)
class Compacted:
    """What a compacted file's footer says: the files it replaces, and legacy origin."""

    replaces: frozenset[str]
    legacy: bool


@dataclass
class PartitionListing:
    """One partition directory as listed, with the supersession rule applied.

    Attributes:
        directory: fs path of the ``namespace=/date=`` directory.
        sizes: every ``*.parquet`` file (not temporary) by name, with its size.
        compacted: the readable compacted files by name.
        accepted: compacted files readers read (``resolve_compacted``).
        covered: names whose rows an accepted compacted file holds.
        problems: files skipped.
    """

    directory: str
    sizes: dict[str, int]
    compacted: dict[str, Compacted]
    accepted: set[str]
    covered: set[str]
    problems: list[FileProblem]

    def readable(self) -> list[str]:
        """Names readers read: accepted compacted files and ordinary uncovered files."""
        return [
            name
            for name in sorted(self.sizes)
            if name not in self.covered and (name in self.accepted or file_kind(name) != COMPACTED)
        ]

    def rejected(self) -> list[str]:
        """Readable compacted files that lost to an accepted one (or are covered by one)."""
        return sorted(name for name in self.compacted if name not in self.accepted)

    def legacy(self, name: str) -> bool:
        """True when file ``name`` may hold duplicate rows."""
        info = self.compacted.get(name)
        if info is not None:
            return info.legacy
        return file_kind(name) == LEGACY


def resolve_compacted(compacted: Mapping[str, Iterable[str]]) -> tuple[set[str], set[str]]:
    """The supersession rule: which compacted files are read, and which names they cover.

    Compacted files are considered by the number of names they replace (most first),
    then by name; one is accepted when neither it nor any name it replaces is covered
    by a file accepted before it, and then covers every name it replaces. So a file
    compacted from another compacted file wins over it (it replaces it and all its
    names), and of two overlapping outputs of concurrent compactors exactly one wins,
    the same one for every reader. Inputs stay readable until a winner covers them.

    Args:
        compacted: compacted file name -> the names it replaces.

    Returns:
        (accepted compacted names, every name they cover).
    """
    replaces = {name: frozenset(names) for name, names in compacted.items()}
    accepted: set[str] = set()
    covered: set[str] = set()
    for name in sorted(replaces, key=lambda item: (-len(replaces[item]), item)):
        if name in covered or not replaces[name].isdisjoint(covered):
            continue
        accepted.add(name)
        covered |= replaces[name]
    return accepted, covered


def list_span_files(
    location: StoreLocation,
    *,
    namespace: str | None = None,
    first_date: str | Date | None = None,
    last_date: str | Date | None = None,
) -> SpanFiles:
    """List the span files readers should read, from the partitions asked for only.

    Reads no footer of an ordinary (batch or legacy) file; reads (once per process)
    the footer of each compacted file, and applies the supersession rule.

    Args:
        location: the store.
        namespace: only this namespace.
        first_date: only partitions dated on or after this day (``YYYY-MM-DD``).
        last_date: only partitions dated on or before this day.

    Returns:
        The files to read (with their legacy flag and size) and the files skipped.

    Raises:
        OSError: the store itself cannot be listed.
    """
    result = SpanFiles()
    for listing in list_partition_files(
        location, namespace=namespace, first_date=first_date, last_date=last_date, result=result
    ):
        result.problems.extend(listing.problems)
        for name in listing.readable():
            path = f"{listing.directory}/{name}"
            result.files.append(path)
            result.legacy.append(listing.legacy(name))
            result.sizes.append(listing.sizes[name])
    result.urls = [location.url_of(path) for path in result.files]
    return result


def list_partition_files(
    location: StoreLocation,
    *,
    namespace: str | None = None,
    first_date: str | Date | None = None,
    last_date: str | Date | None = None,
    result: SpanFiles | None = None,
) -> list[PartitionListing]:
    """List the partitions asked for, each with the supersession rule applied.

    ``result`` (when given) collects the problems found outside any partition.
    """
    first = str(first_date) if first_date is not None else None
    last = str(last_date) if last_date is not None else None
    base = location.spans_root
    if namespace is not None:
        if safe_namespace(namespace) != namespace:
            return []  # never written under such a name
        base = f"{base}/namespace={namespace}"
    _invalidate(location, location.spans_root)
    by_directory: dict[str, dict[str, int]] = {}
    stray: list[FileProblem] = []
    if first is None and last is None:
        # Everything: one recursive listing (one paginated request on an object store).
        for path, size in _find(location, base).items():
            if is_temporary(path):
                continue
            directory, _, name = path.rpartition("/")
            if directory not in by_directory and parse_partition(location, directory) is None:
                stray.append(
                    FileProblem(
                        location.url_of(path),
                        "outside the namespace=<ns>/date=<YYYY-MM-DD> layout",
                    )
                )
                continue
            by_directory.setdefault(directory, {})[name] = size
    else:
        directories = _partition_directories(location, base, namespace, first, last)
        for directory, files in zip(
            directories,
            _map(location, lambda path: _list_directory(location, path), directories),
            strict=True,
        ):
            by_directory[directory] = files
    if result is not None:
        result.problems.extend(sorted(stray, key=lambda problem: problem.path))
    return [
        _resolve_partition(location, directory, by_directory[directory])
        for directory in sorted(by_directory)
    ]


def list_partition(location: StoreLocation, directory: str) -> PartitionListing:
    """List one partition directory (fs path) and apply the supersession rule."""
    _invalidate(location, directory)
    return _resolve_partition(location, directory, _list_directory(location, directory))


def _partition_directories(
    location: StoreLocation, base: str, namespace: str | None, first: str | None, last: str | None
) -> list[str]:
    fs = location.fs
    if namespace is not None:
        namespace_dirs = [base]
    else:
        namespace_dirs = [
            path
            for path in _directories(fs, base)
            if path.rpartition("/")[2].startswith("namespace=")
        ]
    found = []
    for directories in _map(location, lambda path: _directories(fs, path), namespace_dirs):
        for path in directories:
            match = _DATE_DIR.fullmatch(path.rpartition("/")[2])
            if match is None:
                continue
            day = match[1]
            in_range = (first is None or day >= first) and (last is None or day <= last)
            if in_range and parse_partition(location, path) is not None:
                found.append(path.rstrip("/"))
    return sorted(found)


def _find(location: StoreLocation, base: str) -> dict[str, int]:
    """Every file under ``base`` (fs path) with its size; empty when ``base`` is missing."""
    if location.protocol in _LOCAL_PROTOCOLS:
        return _find_local(base)
    try:
        entries: dict[str, Any] = location.fs.find(base, detail=True)
    except FileNotFoundError:
        return {}
    return {
        path: int(info.get("size") or 0)
        for path, info in entries.items()
        if info.get("type", "file") == "file"
    }


def _find_local(base: str) -> dict[str, int]:
    # os.scandir, not fsspec's find(detail=True): on 20,000 files fsspec's per-file info
    # dicts cost 1.6 s, scandir and one stat per file a few tens of milliseconds.
    found: dict[str, int] = {}
    pending = [base.rstrip("/") or "/"]
    while pending:
        directory = pending.pop()
        try:
            entries = list(os.scandir(directory))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in entries:
            path = f"{directory}/{entry.name}"
            try:
                if entry.is_dir():
                    pending.append(path)
                elif entry.is_file():
                    found[path] = entry.stat().st_size
            except FileNotFoundError:  # removed since listed (a compaction's inputs)
                continue
    return found


def _list_local(directory: str) -> list[tuple[str, bool, int]]:
    """(name, is a directory, size) of each entry of a local directory."""
    listed = []
    try:
        entries = list(os.scandir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return []
    for entry in entries:
        try:
            if entry.is_dir():
                listed.append((entry.name, True, 0))
            elif entry.is_file():
                listed.append((entry.name, False, entry.stat().st_size))
        except FileNotFoundError:
            continue
    return listed


def _directories(fs: Any, path: str) -> list[str]:
    if _is_local(fs):
        root = path.rstrip("/")
        return [f"{root}/{name}" for name, is_dir, _ in _list_local(path) if is_dir]
    # refresh: object-store filesystems cache listings (invalidate_cache drops a path
    # and its parents, not its children); a reader must see what others wrote since.
    try:
        entries = fs.ls(path, detail=True, refresh=True)
    except (FileNotFoundError, NotADirectoryError):
        return []
    return [str(entry["name"]).rstrip("/") for entry in entries if entry.get("type") == "directory"]


def _list_directory(location: StoreLocation, directory: str) -> dict[str, int]:
    if location.protocol in _LOCAL_PROTOCOLS:
        return {
            name: size
            for name, is_dir, size in _list_local(directory)
            if not is_dir and not is_temporary(name)
        }
    try:
        entries = location.fs.ls(directory, detail=True, refresh=True)
    except (FileNotFoundError, NotADirectoryError):
        return {}
    files = {}
    for entry in entries:
        path = str(entry["name"])
        if entry.get("type", "file") != "file" or is_temporary(path):
            continue
        files[path.rpartition("/")[2]] = int(entry.get("size") or 0)
    return files


def _invalidate(location: StoreLocation, path: str) -> None:
    # Object-store filesystems cache listings; a reader must see files written since.
    if location.is_local:
        return  # the local filesystem caches nothing
    fs = location.fs
    invalidate = getattr(fs, "invalidate_cache", None)
    if invalidate is not None:
        invalidate(path)
    # invalidate_cache drops a path and its parents only. A recursive find() fills the
    # cache of every partition directory, and s3fs answers info()/open() of a file from
    # its parent's cached listing: a file written since (a compacted output, another
    # writer's batch) would be "not found" when the reader opens it.
    cache = getattr(fs, "dircache", None)
    if isinstance(cache, MutableMapping):
        prefix = path.rstrip("/") + "/"
        for key in [key for key in list(cache) if str(key).startswith(prefix)]:
            cache.pop(key, None)


# On an object store each listing or footer read is a network round trip that releases
# the GIL, so many at once overlap their latency; on a local disk threads only add cost.
_THREADS = 8
_LOCAL_PROTOCOLS = frozenset({"file", "local"})


def _is_local(fs: Any) -> bool:
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    return protocol in _LOCAL_PROTOCOLS


def _map(location: StoreLocation, function: Callable[[T], R], items: list[T]) -> list[R]:
    if location.protocol in _LOCAL_PROTOCOLS or len(items) < 4:
        return [function(item) for item in items]
    with ThreadPoolExecutor(_THREADS, thread_name_prefix="span_tree-list") as pool:
        return list(pool.map(function, items))


def _resolve_partition(
    location: StoreLocation, directory: str, files: dict[str, int]
) -> PartitionListing:
    problems: list[FileProblem] = []
    sizes: dict[str, int] = {}
    for name, size in files.items():
        if not name.endswith(".parquet"):
            problems.append(
                FileProblem(location.url_of(f"{directory}/{name}"), "not a .parquet file")
            )
            continue
        sizes[name] = size
    compacted_names = sorted(name for name in sizes if file_kind(name) == COMPACTED)
    infos = _map(
        location,
        lambda name: _compacted_info(location, f"{directory}/{name}", sizes[name]),
        compacted_names,
    )
    compacted: dict[str, Compacted] = {}
    for name, info in zip(compacted_names, infos, strict=True):
        if isinstance(info, Compacted):
            compacted[name] = info
        else:
            problems.append(FileProblem(location.url_of(f"{directory}/{name}"), info))
    accepted, covered = resolve_compacted({name: info.replaces for name, info in compacted.items()})
    return PartitionListing(directory, sizes, compacted, accepted, covered, problems)


_cache: dict[tuple[str, str, int], Compacted | str] = {}
_cache_lock = threading.Lock()
_CACHE_LIMIT = 100_000


def _compacted_info(location: StoreLocation, path: str, size: int) -> Compacted | str:
    """The footer of a compacted file, or why it cannot be read (cached when final)."""
    key = (location.protocol, path, size)
    with _cache_lock:
        cached = _cache.get(key)
    if cached is not None:
        return cached
    info: Compacted | str
    if size < 12:  # magic + footer length + magic
        info = f"truncated or empty ({size} bytes)"
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            with location.fs.open(path, "rb") as handle:
                metadata = pq.ParquetFile(handle).metadata.metadata or {}
        except Exception as error:  # any failure to parse the footer means "not readable"
            reason = f"unreadable Parquet footer: {_short(error)}"
            # Only a footer Arrow read and rejected is bad for good; a failed read
            # (network, a file being replaced) is not remembered.
            if not isinstance(error, pa.ArrowInvalid):
                return reason
            info = reason
        else:
            info = Compacted(
                replaces=frozenset(_names(metadata.get(REPLACES_KEY))),
                legacy=metadata.get(LEGACY_KEY) == b"1",
            )
    with _cache_lock:
        if len(_cache) >= _CACHE_LIMIT:
            _cache.clear()
        _cache[key] = info
    return info


def _names(value: bytes | None) -> list[str]:
    if not value:
        return []
    return [name for name in value.decode().split(",") if name]


def _short(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
