"""Write a local file so that readers see either nothing or all of it.

The one implementation shared by the store writer, the spools and the receiver's key
files (stdlib only: the HTTP sink uses it without loading pyarrow).
"""

from __future__ import annotations

import contextlib
import os
import secrets

# Store readers, spools and compaction skip files whose name starts with this.
TEMP_PREFIX = "."
# Spans and keys may hold what scrubbing did not recognise: owner-only by default.
FILE_MODE = 0o600
DIR_MODE = 0o700


def make_private_dirs(directory: str) -> None:
    """Create ``directory`` and any missing parents with mode ``DIR_MODE`` (0700).

    Directories that exist already keep their mode (a store shared on purpose).
    """
    missing = []
    current = os.path.abspath(directory)
    while not os.path.isdir(current):
        missing.append(current)
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    for path in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another writer made it meanwhile
            os.mkdir(path, DIR_MODE)


def write_file_atomic(path: str, data: bytes) -> None:
    """Put ``data`` at the local ``path`` atomically and durably.

    Written under a hidden (``.``-prefixed) temporary name in the same directory,
    fsynced, then renamed over ``path`` (atomic on POSIX). The file is created with
    mode 0600 and missing directories with 0700 (owner only). A failure removes the
    temporary file; a crash can leave only a hidden temporary file, which every reader
    of the store and the spools skips (and ``compact`` removes once stale).

    Raises:
        OSError: the directory or the file cannot be written.
    """
    directory, name = os.path.split(path)
    make_private_dirs(directory or ".")
    # pid and a random part: concurrent writers of one path never share a temporary.
    unique = f"{os.getpid()}.{secrets.token_hex(4)}"
    temporary = os.path.join(directory, f"{TEMP_PREFIX}{name}.{unique}.tmp")
    try:
        # Created owner-only (0600) from the start, not chmod-ed after the data is in.
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        with open(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(temporary)
        raise
