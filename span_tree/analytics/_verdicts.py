"""Bad store files, found while reading and remembered, instead of checked on each start.

DuckDB reads the store's files; when a query fails because of one file (corrupt pages, a
foreign file, a column of another type), the file is found (DuckDB names it, or the
candidates are read in halves until the culprit is alone), left out of the views and
remembered here, so later processes skip it without looking again. A verdict holds for
one version of one file: it is keyed by store URL and path, and kept only while the
file's size and modification time (or etag) are those it had when judged.

The verdicts live in one small JSON file in the user's cache directory, written
atomically; concurrent processes may lose each other's latest verdict (the file is
then judged again), never corrupt the cache.
"""

from __future__ import annotations

import json
import os
import re
import threading
from dataclasses import dataclass
from typing import Any

from span_tree.analytics._source import cache_dir

CACHE_NAME = "bad_files.json"
_LIMIT = 10_000  # verdicts kept per cache file, newest first

# Errors of the data itself (corrupt pages, foreign encodings), as DuckDB words them
# when it does not name the file; a query's own mistakes never match these.
_CORRUPTION_RE = re.compile(
    r"don't know what type|thrift|decompress|corrupt|invalid (page|dictionary|encoding|"
    r"string)|snappy|zstd|lz4|gzip|brotli|unexpected end|out of buffer|magic bytes|"
    r"parquet|page header|deserializ|TProtocolException|invalid data",
    re.IGNORECASE,
)
_QUOTED_RE = re.compile(r"\"([^\"]+)\"|'([^']+)'")
_MISSING_COLUMN = "schema mismatch"
_VANISHED_RE = re.compile(r"No files found that match the pattern|No such file|not found", re.I)


@dataclass(frozen=True)
class Verdict:
    """What is wrong with one version of one file.

    Attributes:
        bad: skip it (``False``: read it by column name, an older schema).
        reason: one line for a person.
        stamp: the file's size and mtime/etag when judged.
    """

    bad: bool
    reason: str
    stamp: str


def file_stamp(location: Any, url: str) -> str:
    """``size:mtime`` (or ``size:etag``) of a store file; changes when the file does."""
    if location.is_local:
        status = os.stat(url)
        return f"{status.st_size}:{status.st_mtime}"
    info = location.fs.info(_fs_path(location, url))
    version = info.get("mtime") or info.get("ETag") or info.get("LastModified") or ""
    return f"{info.get('size')}:{version}"


def _fs_path(location: Any, url: str) -> str:
    return url if location.is_local else url.split("://", 1)[1]


class Verdicts:
    """The remembered verdicts of one store's files (see the module docstring)."""

    def __init__(self, location: Any, path: str | None = None) -> None:
        self.location = location
        self.path = path or os.path.join(cache_dir(), CACHE_NAME)
        self._lock = threading.Lock()
        self._mine: dict[str, Verdict] = {}
        self._checked: dict[str, bool] = {}  # url -> stamp still matches (this process)
        self._load()

    def _load(self) -> None:
        try:
            with open(self.path, encoding="utf-8") as handle:
                everything = json.load(handle)
            stored = everything.get(self.location.url, {})
            self._mine = {
                url: Verdict(bool(item["bad"]), str(item["reason"]), str(item["stamp"]))
                for url, item in stored.items()
            }
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            self._mine = {}

    def get(self, url: str) -> Verdict | None:
        """The verdict of ``url`` if it still applies to the file as it is now."""
        verdict = self._mine.get(url)
        if verdict is None:
            return None
        if url not in self._checked:
            try:
                self._checked[url] = file_stamp(self.location, url) == verdict.stamp
            except OSError:
                self._checked[url] = False
        return verdict if self._checked[url] else None

    def remember(self, url: str, *, bad: bool, reason: str) -> Verdict:
        """Record (and persist) a verdict on the file at ``url`` as it is now."""
        try:
            stamp = file_stamp(self.location, url)
        except OSError:
            stamp = ""
        verdict = Verdict(bad, reason, stamp)
        with self._lock:
            self._mine[url] = verdict
            self._checked[url] = True
            self._save()
        return verdict

    def _save(self) -> None:
        try:
            with open(self.path, encoding="utf-8") as handle:
                everything = json.load(handle)
            if not isinstance(everything, dict):
                everything = {}
        except (OSError, ValueError):
            everything = {}
        items = list(self._mine.items())[-_LIMIT:]
        everything[self.location.url] = {
            url: {"bad": v.bad, "reason": v.reason, "stamp": v.stamp} for url, v in items
        }
        try:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            temporary = f"{self.path}.{os.getpid()}.{threading.get_ident()}.tmp"
            with open(temporary, "w", encoding="utf-8") as handle:
                json.dump(everything, handle)
            os.replace(temporary, self.path)
        except OSError:
            pass  # a read-only cache: the verdict holds for this process only


def named_file(message: str, files: set[str]) -> str | None:
    """The listed file a DuckDB error message names, if any."""
    for match in _QUOTED_RE.finditer(message):
        text = match.group(1) or match.group(2)
        if text in files:
            return text
    for path in files:  # unquoted mentions
        if path in message:
            return path
    return None


def is_schema_mismatch(message: str) -> bool:
    """True when DuckDB could not find a column in a file (an older schema)."""
    return _MISSING_COLUMN in message


def is_vanished(message: str) -> bool:
    """True when a listed file was gone when read (replaced by compaction, pruned)."""
    return bool(_VANISHED_RE.search(message))


def looks_corrupt(message: str) -> bool:
    """True when an error without a file name reads like damaged file contents."""
    return bool(_CORRUPTION_RE.search(message))


def find_bad_files(candidates: list[str], *, read_all: Any) -> list[tuple[str, str]]:
    """The files among ``candidates`` that fail a full read, with DuckDB's reason.

    ``read_all(files)`` reads every column of every row of ``files`` and raises
    ``duckdb.Error`` on a bad one. A failure that names a file convicts it; one that
    names none splits the group in halves, down to single files. Reads about twice
    the candidates' data in the worst case (once per bad file, then remembered).
    """
    import duckdb

    found: list[tuple[str, str]] = []
    groups = [candidates]
    while groups:
        group = groups.pop()
        if not group:
            continue
        try:
            read_all(group)
        except duckdb.Error as error:
            message = _first_line(error)
            culprit = named_file(str(error), set(group))
            if culprit is not None:
                found.append((culprit, message))
                groups.append([path for path in group if path != culprit])
            elif len(group) == 1:
                found.append((group[0], message))
            else:
                middle = len(group) // 2
                groups += [group[:middle], group[middle:]]
    return found


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
