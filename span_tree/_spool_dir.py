"""Where a sink keeps what it could not deliver yet: one directory per destination.

The one rule for both spools (the Parquet sink's and the HTTP sink's); stdlib only.
"""

from __future__ import annotations

import hashlib
import os
import tempfile

from span_tree._atomic import make_private_dirs


def default_spool_dir(destination: str) -> str:
    """The spool directory of ``destination`` (a store URL or a receiver URL).

    ``SPANTREE_SPOOL_DIR`` if set, else the user cache (``XDG_CACHE_HOME`` or
    ``~/.cache``) under ``spantree/spool``; where that cannot be created (a read-only
    home, as on AWS Lambda), the temporary directory. Each destination has its own
    subdirectory named by a hash of it, so a later process replays what an earlier one
    left for the same destination.
    """
    digest = hashlib.sha256(destination.encode()).hexdigest()[:16]
    configured = os.environ.get("SPANTREE_SPOOL_DIR")
    if configured:
        return os.path.join(os.path.expanduser(configured), digest)
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    directory = os.path.join(cache, "spantree", "spool", digest)
    try:
        make_private_dirs(directory)
    except OSError:
        return os.path.join(tempfile.gettempdir(), "spantree-spool", digest)
    return directory
