"""A bounded local directory that keeps span files the store could not take yet.

The spool has the store's own layout (``namespace=/date=/<ksuid>.parquet``), so a
spooled file is replayed by putting it at the same relative path in the store. Putting
the same name twice yields the same file, which makes a replay idempotent even when
several processes share the spool: nothing is duplicated.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable

import pyarrow.parquet as pq

from span_tree._atomic import TEMP_PREFIX, write_file_atomic
from span_tree.storage._location import StoreLocation
from span_tree.storage._writer import PreparedFile, put_prepared

DEFAULT_SPOOL_BYTES = 256 * 1024 * 1024


class Spool:
    """Span files waiting for their store.

    Args:
        directory: the spool directory (created on first use).
        max_bytes: the spool never grows beyond this; files that do not fit are refused.
    """

    def __init__(self, directory: str, *, max_bytes: int = DEFAULT_SPOOL_BYTES) -> None:
        self.directory = os.path.abspath(os.path.expanduser(directory))
        self.max_bytes = max_bytes

    def put(self, prepared: PreparedFile) -> bool:
        """Keep one file; False when it does not fit or the spool cannot be written."""
        try:
            if self.size() + len(prepared.data) > self.max_bytes:
                return False
            write_file_atomic(os.path.join(self.directory, prepared.relative_path), prepared.data)
        except OSError:
            return False
        return True

    def pending(self) -> list[str]:
        """Relative paths of spooled files, oldest (KSUID order) first."""
        found: list[str] = []
        if not os.path.isdir(self.directory):
            return found
        for folder, _, names in os.walk(self.directory):
            for name in names:
                if name.endswith(".parquet") and not name.startswith(TEMP_PREFIX):
                    found.append(os.path.relpath(os.path.join(folder, name), self.directory))
        return sorted(found, key=lambda relative: os.path.basename(relative))

    def size(self) -> int:
        """Bytes held by the spool."""
        total = 0
        for folder, _, names in os.walk(self.directory):
            for name in names:
                try:
                    total += os.path.getsize(os.path.join(folder, name))
                except OSError:
                    continue
        return total

    def pending_rows(self) -> int:
        """Span rows held by the spool (read from the Parquet footers)."""
        rows = 0
        for relative in self.pending():
            try:
                rows += pq.read_metadata(os.path.join(self.directory, relative)).num_rows
            except (OSError, ValueError):
                continue
        return rows

    def replay(
        self,
        location: StoreLocation,
        *,
        should_stop: Callable[[], bool] = lambda: False,
        put: Callable[[PreparedFile], object] | None = None,
    ) -> int:
        """Move spooled files into the store, oldest first; return the rows moved.

        Stops at the first file the store refuses (it is still down) and lets that
        error propagate; files already moved stay moved.

        Args:
            location: the store.
            should_stop: checked before each file (a flush deadline).
            put: how to put one file (default: ``put_prepared`` into ``location``);
                the sink passes a put bounded in time.

        Raises:
            OSError (or the filesystem's own error): the store refused a file.
        """
        moved = 0
        for relative in self.pending():
            if should_stop():
                break
            path = os.path.join(self.directory, relative)
            try:
                with open(path, "rb") as handle:
                    data = handle.read()
            except FileNotFoundError:  # another process replayed it meanwhile
                continue
            try:
                rows = pq.read_metadata(path).num_rows
            except (OSError, ValueError):
                rows = 0
            prepared = PreparedFile(relative.replace(os.sep, "/"), data, rows)
            if put is None:
                put_prepared(location, prepared)
            else:
                put(prepared)
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)
            moved += rows
        return moved
