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


def write_file_atomic(path: str, data: bytes) -> None:
    """Put ``data`` at the local ``path`` atomically and durably.

    Written under a hidden (``.``-prefixed) temporary name in the same directory,
    fsynced, then renamed over ``path`` (atomic on POSIX). A failure removes the
    temporary file; a crash can leave only a hidden temporary file, which every reader
    of the store and the spools skips (and ``compact`` removes once stale).

    Raises:
        OSError: the directory or the file cannot be written.
    """
    directory, name = os.path.split(path)
    os.makedirs(directory or ".", exist_ok=True)
    # pid and a random part: concurrent writers of one path never share a temporary.
    unique = f"{os.getpid()}.{secrets.token_hex(4)}"
    temporary = os.path.join(directory, f"{TEMP_PREFIX}{name}.{unique}.tmp")
    try:
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(temporary)
        raise
