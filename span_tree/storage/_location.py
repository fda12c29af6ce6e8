"""Where a store lives: an fsspec filesystem plus a root path inside it.

A local store imports fsspec only when something asks for its filesystem: listing and
reading a local store go through ``os`` and DuckDB, and importing fsspec (with asyncio)
was a third of a ``spantree sql`` process's start-up.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

SPANS_DIR = "spans"
LOCAL = "file"


@dataclass(frozen=True)
class StoreLocation:
    """A store: the filesystem it is on and its root directory.

    Attributes:
        fs: the fsspec filesystem (``LocalFileSystem``, ``S3FileSystem``...).
        root: the store's root path inside ``fs``, without protocol.
        url: the store as given to engines: an absolute path for a local store, else
            ``protocol://root``.
        protocol: ``"file"`` for a local store, else the fsspec protocol (``"s3"``...).
    """

    root: str
    url: str
    protocol: str
    filesystem: Any = field(default=None, repr=False, compare=False)

    @property
    def fs(self) -> Any:
        """The fsspec filesystem (a local store's is made on first use)."""
        if self.filesystem is None:
            from fsspec.implementations.local import LocalFileSystem

            object.__setattr__(self, "filesystem", LocalFileSystem())
        return self.filesystem

    @property
    def is_local(self) -> bool:
        """True when the store is a directory on this machine."""
        return self.protocol == LOCAL

    @property
    def spans_root(self) -> str:
        """The directory holding the ``namespace=*/date=*`` partitions."""
        return self.join(SPANS_DIR)

    def join(self, *parts: str) -> str:
        """Return the fs path of ``parts`` under the store root."""
        return "/".join([self.root.rstrip("/"), *(part.strip("/") for part in parts)])

    def url_of(self, path: str) -> str:
        """Return the URL of an fs path that DuckDB, polars or pyarrow can open.

        A local path stays a plain path; an object-store path gets its protocol back
        (DuckDB resolves it through a registered fsspec filesystem).
        """
        if self.is_local:
            return path
        return f"{self.protocol}://{path.lstrip('/')}"


def open_store(
    url: str | None = None, *, storage_options: Mapping[str, Any] | None = None
) -> StoreLocation:
    """Resolve a store path or fsspec URL.

    Args:
        url: a local path (``~`` expanded), ``file://`` URL or any fsspec URL
            (``s3://bucket/prefix``, ``memory://name``); ``None`` means the local store
            (``SPANTREE_STORE`` or ``~/.spantree``).
        storage_options: fsspec options for the filesystem (credentials,
            ``client_kwargs={"endpoint_url": ...}``...).

    Returns:
        The store location. Nothing is created or contacted yet.

    Raises:
        ValueError: the URL's protocol is unknown to fsspec.
    """
    if url is None:
        from span_tree._config import default_store

        url = default_store()
    options = dict(storage_options or {})
    if "://" not in url and not options:
        root = os.path.abspath(os.path.expanduser(url))
        return StoreLocation(root=root, url=root, protocol=LOCAL)
    if "://" not in url:
        url = os.path.abspath(os.path.expanduser(url))
    import fsspec
    from fsspec.implementations.local import LocalFileSystem

    try:
        fs, root = fsspec.core.url_to_fs(url, **options)
    except (ImportError, ValueError) as error:
        raise ValueError(f"cannot open store {url!r}: {error}") from error
    if isinstance(fs, LocalFileSystem):
        root = os.path.abspath(root)
        return StoreLocation(root=root, url=root, protocol=LOCAL, filesystem=fs)
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    root = root.rstrip("/")
    return StoreLocation(
        root=root, url=f"{protocol}://{root.lstrip('/')}", protocol=protocol, filesystem=fs
    )
