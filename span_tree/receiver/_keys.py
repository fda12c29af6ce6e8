"""API keys: random secrets mapped to namespaces, kept hashed in the store.

A key looks like ``st_<id>_<secret>``. The store keeps one small JSON document per key
under ``<store>/keys/<id>.json`` holding the namespace and the SHA-256 of the whole key
(keys are 256-bit random, so a fast hash is enough: there is nothing to brute-force).
The receiver compares hashes with ``hmac.compare_digest`` and never logs a key.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from span_tree._atomic import write_file_atomic
from span_tree._config import check_namespace_name
from span_tree.storage._layout import check_namespace

KEY_PREFIX = "st_"


@dataclass(frozen=True)
class KeyInfo:
    """What the store knows about one API key (never the key itself)."""

    key_id: str
    namespace: str
    created_at: str
    revoked_at: str | None = None


def validate_namespace(namespace: str) -> str:
    """Return ``namespace`` if it is usable as a partition directory name.

    The store's own rule (``check_namespace``), and for a key also: at most 128
    characters, no leading ``.``.

    Raises:
        ValueError: empty, too long, or with characters outside ``[A-Za-z0-9_.-]``.
    """
    check_namespace_name(namespace)  # the same rule as configure(namespace=...)
    return check_namespace(namespace)


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def _now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class KeyStore:
    """API keys kept under ``<store>/keys/`` on any fsspec filesystem.

    Args:
        fs: the fsspec filesystem of the store.
        root: the store's root path on ``fs`` (no protocol).
        refresh_seconds: how long a lookup may rely on the cached key list; a
            revoked key stops working within this time on every receiver.
    """

    def __init__(self, fs: Any, root: str, *, refresh_seconds: float = 5.0) -> None:
        self._fs = fs
        self._dir = root.rstrip("/") + "/keys"
        self._refresh_seconds = refresh_seconds
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[str, str]] = {}  # key id -> (hash, namespace)
        self._loaded_at = float("-inf")

    # -- administration --------------------------------------------------------------
    def create(self, namespace: str) -> str:
        """Create a key for ``namespace`` and return it (the only time it is visible).

        Raises:
            ValueError: the namespace is not a valid partition name.
        """
        validate_namespace(namespace)
        key_id = secrets.token_hex(6)
        key = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
        document = {
            "id": key_id,
            "namespace": namespace,
            "sha256": _hash(key),
            "created_at": _now_iso(),
            "revoked_at": None,
        }
        self._write(key_id, document)
        return key

    def list_keys(self) -> list[KeyInfo]:
        """Every key, revoked ones included, oldest first."""
        infos = [
            KeyInfo(
                key_id=doc["id"],
                namespace=doc["namespace"],
                created_at=doc["created_at"],
                revoked_at=doc.get("revoked_at"),
            )
            for doc in self._documents()
        ]
        return sorted(infos, key=lambda info: (info.created_at, info.key_id))

    def revoke(self, key_or_id: str) -> KeyInfo:
        """Revoke a key given the key itself or its id (as ``keys list`` shows it).

        Raises:
            KeyError: no such key.
        """
        key_id = _key_id(key_or_id) or key_or_id
        for doc in self._documents():
            if doc["id"] == key_id:
                doc["revoked_at"] = doc.get("revoked_at") or _now_iso()
                self._write(key_id, doc)
                with self._lock:
                    self._loaded_at = float("-inf")
                return KeyInfo(doc["id"], doc["namespace"], doc["created_at"], doc["revoked_at"])
        raise KeyError(key_id)

    # -- authentication --------------------------------------------------------------
    def namespace_of(self, key: str | None) -> str | None:
        """Return the namespace of a valid, unrevoked key, else None (constant-time compare)."""
        if not key:
            return None
        key_id = _key_id(key)
        now = time.monotonic()
        with self._lock:
            stale = now - self._loaded_at > self._refresh_seconds
        if stale:
            self._reload(now)
        with self._lock:
            entry = self._cache.get(key_id or "")
            # A key created since the last reload: look again, at most once a second.
            retry = (
                entry is None
                and key_id is not None
                and now - self._loaded_at > min(1.0, self._refresh_seconds)
            )
        if retry:
            self._reload(now)
            with self._lock:
                entry = self._cache.get(key_id or "")
        # Hash and compare even for unknown ids so timing does not tell ids apart.
        expected, namespace = entry if entry else ("0" * 64, None)
        if hmac.compare_digest(expected, _hash(key)) and namespace is not None:
            return namespace
        return None

    def _reload(self, now: float) -> None:
        cache = {
            doc["id"]: (doc["sha256"], doc["namespace"])
            for doc in self._documents()
            if not doc.get("revoked_at")
        }
        with self._lock:
            self._cache = cache
            self._loaded_at = now

    # -- storage ---------------------------------------------------------------------
    def _documents(self) -> list[dict[str, Any]]:
        try:
            paths = self._fs.glob(self._dir + "/*.json")
        except FileNotFoundError:
            return []
        documents = []
        for path in paths:
            try:
                with self._fs.open(path, "rb") as handle:
                    doc = json.loads(handle.read())
            except (OSError, ValueError):
                continue  # a key file being replaced right now, or damaged: skip it
            if isinstance(doc, dict) and {"id", "namespace", "sha256"} <= doc.keys():
                documents.append(doc)
        return documents

    def _write(self, key_id: str, document: dict[str, Any]) -> None:
        data = json.dumps(document, indent=1).encode()
        path = f"{self._dir}/{key_id}.json"
        if not _is_local(self._fs):
            self._fs.pipe_file(path, data)  # one PUT: readers see the old or the new file
            return
        write_file_atomic(path, data)  # readers never see half a file


def _is_local(fs: Any) -> bool:
    protocol = fs.protocol
    protocols = (protocol,) if isinstance(protocol, str) else tuple(protocol)
    return "file" in protocols or "local" in protocols


def _key_id(key: str) -> str | None:
    if not key.startswith(KEY_PREFIX):
        return None
    key_id, sep, _ = key[len(KEY_PREFIX) :].partition("_")
    return key_id if sep and key_id else None
