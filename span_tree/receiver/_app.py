"""The receiver's ASGI application (Starlette): ingest, liveness, status, OpenAPI."""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from span_tree._record import SPAN_COLUMNS
from span_tree.receiver._ingest import IngestError, ParsedBody, gunzip_bounded, parse_body
from span_tree.receiver._keys import KeyStore
from span_tree.receiver._limits import (
    DEFAULT_MAX_BODY,
    DEFAULT_MAX_FUTURE_DAYS,
    DEFAULT_MAX_PARTITIONS,
    DEFAULT_MAX_SPANS,
)
from span_tree.receiver._openapi import openapi_document
from span_tree.receiver._window import check_window
from span_tree.storage._writer import PreparedFile, prepare_column_files, put_prepared

if TYPE_CHECKING:
    from span_tree.storage._auto import AutoCompactor
    from span_tree.storage._location import StoreLocation

logger = logging.getLogger("span_tree.receiver")

API_KEY_HEADER = "x-api-key"
_START_TIME = SPAN_COLUMNS.index("start_time")


@dataclass(frozen=True)
class ReceiverConfig:
    """Settings of one receiver process (see ``create_app``)."""

    store: str | None
    storage_options: Mapping[str, Any] | None = None
    max_body: int = DEFAULT_MAX_BODY
    max_spans: int = DEFAULT_MAX_SPANS
    max_concurrent_writes: int = 4
    max_concurrent_requests: int = 16
    key_refresh_seconds: float = 5.0
    status_cache_seconds: float = 5.0
    compact_interval: float | None = 600.0
    compact_min_age: float = 300.0
    max_age_days: float | None = None
    max_future_days: float = DEFAULT_MAX_FUTURE_DAYS
    max_partitions: int = DEFAULT_MAX_PARTITIONS


def create_app(
    store: str | None = None,
    *,
    storage_options: Mapping[str, Any] | None = None,
    max_body: int = DEFAULT_MAX_BODY,
    max_spans: int = DEFAULT_MAX_SPANS,
    max_concurrent_writes: int = 4,
    max_concurrent_requests: int = 16,
    key_refresh_seconds: float = 5.0,
    max_age_days: float | None = None,
    max_future_days: float = DEFAULT_MAX_FUTURE_DAYS,
    max_partitions: int = DEFAULT_MAX_PARTITIONS,
    compact_interval: float | None = 600.0,
    compact_min_age: float = 300.0,
) -> Starlette:
    """Build the receiver's ASGI app writing into ``store``.

    Args:
        store: store path or fsspec URL (default: the local store).
        storage_options: fsspec options for the store (credentials, endpoint_url...).
        max_body: largest request body in bytes, as sent and once decompressed (413).
        max_spans: most spans in one request (413).
        max_concurrent_writes: store writes running at once.
        max_concurrent_requests: request bodies held in memory at once (each at most
            ``max_body`` as sent plus ``max_body`` decompressed); the rest wait.
        key_refresh_seconds: how soon a created or revoked key takes effect.
        compact_interval: seconds between background compactions of the store (a
            low-priority thread; safe with several receivers); ``None``: never.
        compact_min_age: files younger than this are left to a later compaction.
        max_age_days: spans starting more than this many days ago are refused (422);
            None: only before 1970 (the store's retention, if it has one).
        max_future_days: spans starting more than this many days ahead are refused.
        max_partitions: most distinct start days in one request (422 beyond).

    Returns:
        A Starlette application (serve it with uvicorn or any ASGI server).

    Raises:
        ValueError: the store URL cannot be opened.
    """
    return _build(
        ReceiverConfig(
            store=store,
            storage_options=storage_options,
            max_body=max_body,
            max_spans=max_spans,
            max_concurrent_writes=max_concurrent_writes,
            max_concurrent_requests=max_concurrent_requests,
            key_refresh_seconds=key_refresh_seconds,
            max_age_days=max_age_days,
            max_future_days=max_future_days,
            max_partitions=max_partitions,
            compact_interval=compact_interval,
            compact_min_age=compact_min_age,
        )
    )


def _build(config: ReceiverConfig) -> Starlette:
    from span_tree.storage import open_store

    location = open_store(config.store, storage_options=config.storage_options)
    keys = KeyStore(location.fs, location.root, refresh_seconds=config.key_refresh_seconds)
    service = _Service(config, location, keys)
    routes = [
        Route("/v1/spans", service.ingest, methods=["POST"]),
        Route("/v1/health", service.health, methods=["GET"]),
        Route("/v1/status", service.status, methods=["GET"]),
        Route("/openapi.json", service.openapi, methods=["GET"]),
    ]
    from span_tree.receiver._otlp import otlp_routes  # OTLP/HTTP: /v1/traces, /v1/logs

    routes += otlp_routes(service)
    app = Starlette(routes=routes)
    app.state.receiver = service
    if config.compact_interval is not None:
        from span_tree.storage._auto import AutoCompactor

        service.compactor = AutoCompactor(
            location,
            interval=config.compact_interval,
            first_delay=min(60.0, config.compact_interval),
            min_age=config.compact_min_age,
        )
        service.compactor.run_forever()
    return app


class _Service:
    def __init__(self, config: ReceiverConfig, location: StoreLocation, keys: KeyStore) -> None:
        self.config = config
        self.location = location
        self.keys = keys
        self.requests = anyio.CapacityLimiter(config.max_concurrent_requests)
        self.parsing = anyio.CapacityLimiter(1)
        self.writing = anyio.CapacityLimiter(config.max_concurrent_writes)
        self.accepted_spans = 0
        self.accepted_requests = 0
        self.compactor: AutoCompactor | None = None
        # namespace -> (monotonic time, rows): pollers share one query per interval.
        self._status_cache: dict[str, tuple[float, list[dict[str, Any]]]] = {}

    async def _namespace(self, request: Request) -> str | None:
        key = request.headers.get(API_KEY_HEADER)
        if not key:
            return None
        # The key list may be re-read from the store (object store: a network call).
        return await anyio.to_thread.run_sync(self.keys.namespace_of, key)

    async def ingest(self, request: Request) -> Response:
        namespace = await self._namespace(request)
        if namespace is None:
            return _problem(401, "missing or invalid API key (header X-API-Key)")
        encoding = request.headers.get("content-encoding", "identity").strip().lower()
        try:
            if encoding not in ("identity", "", "gzip"):
                raise IngestError(415, {"error": f"unsupported Content-Encoding {encoding!r}"})
            # Bodies in memory at once are bounded; decoding, validating and encoding
            # Parquet is CPU work under the GIL (one thread at a time does it fastest);
            # puts wait on disks (fsync) or object stores, so a few run side by side.
            async with self.requests:
                body = await self._read_body(request)
                async with self.parsing:
                    count, files = await anyio.to_thread.run_sync(
                        self._prepare, body, encoding == "gzip", namespace
                    )
                del body
                async with self.writing:
                    await anyio.to_thread.run_sync(self._put, files)
        except IngestError as error:
            return JSONResponse(error.detail, status_code=error.status)
        except _StoreUnavailable as error:
            return _problem(503, f"the store could not be written: {error}", retry_after=1)
        except ClientDisconnect:
            return _problem(400, "the client went away before sending the whole body")
        self.accepted_requests += 1
        self.accepted_spans += count
        return JSONResponse({"accepted": count}, status_code=202)

    async def _read_body(self, request: Request) -> bytes:
        limit = self.config.max_body
        declared = request.headers.get("content-length")
        if declared is not None and declared.strip().isdigit() and int(declared) > limit:
            raise IngestError(413, {"error": "body too large", "limit": limit})
        # Count while streaming too: Content-Length may be absent (chunked) or lie.
        chunks = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise IngestError(413, {"error": "body too large", "limit": limit})
            chunks.append(chunk)
        return b"".join(chunks)

    def _parse(self, body: bytes, gzipped: bool, namespace: str) -> ParsedBody:
        if gzipped:
            body = gunzip_bounded(body, limit=self.config.max_body)
        try:
            return parse_body(body, namespace=namespace, max_spans=self.config.max_spans)
        except IngestError:
            raise
        except Exception as error:
            # A body the validator did not foresee is still the client's problem: say
            # so (422) rather than fail with a 5xx; log it to fix the validator.
            logger.exception("unexpected error while validating a request body")
            reason = repr(error)[:300]  # bounded: an error may quote the whole body
            raise IngestError(422, {"error": f"invalid body: {reason}", "field": "body"}) from None

    def _prepare(
        self, body: bytes, gzipped: bool, namespace: str
    ) -> tuple[int, list[PreparedFile]]:
        """CPU part: decode, validate, encode the Parquet files (nothing visible yet)."""
        parsed = self._parse(body, gzipped, namespace)
        self.check_window(parsed.columns[_START_TIME])
        try:
            # Files named after the client's batch id: a resent body (a retry after a
            # write whose answer was lost, a spool replay) replaces them, adds no rows.
            # A body without one gets fresh legacy names (readers deduplicate those).
            # Arrow arrays are built from the validated columns: no record per span.
            files = prepare_column_files(parsed.columns, batch_id=parsed.batch_id)
            return parsed.span_count, files
        except Exception as error:
            # Validation let through something Arrow cannot hold: a validator gap, and
            # still the body's fault; nothing was written.
            logger.exception("could not encode %d validated spans", parsed.span_count)
            reason = repr(error)[:300]
            raise IngestError(422, {"error": f"spans cannot be stored: {reason}"}) from None

    def _put(self, files: list[PreparedFile]) -> None:
        """I/O part: put each file atomically (rename or one PUT) before answering."""
        try:
            for prepared in files:
                put_prepared(self.location, prepared)
        except Exception as error:
            logger.exception("could not write %d files to the store", len(files))
            raise _StoreUnavailable(type(error).__name__) from None

    def check_window(self, starts: Sequence[int]) -> None:
        """Refuse (422) spans starting outside the accepted window, or on too many days."""
        config = self.config
        check_window(
            starts,
            max_age_days=config.max_age_days,
            max_future_days=config.max_future_days,
            max_partitions=config.max_partitions,
        )

    async def health(self, request: Request) -> Response:
        # Counters of this worker process since it started.
        return JSONResponse(
            {
                "status": "ok",
                "accepted_requests": self.accepted_requests,
                "accepted_spans": self.accepted_spans,
            }
        )

    async def status(self, request: Request) -> Response:
        namespace = await self._namespace(request)
        if namespace is None:
            return _problem(401, "missing or invalid API key (header X-API-Key)")
        asked = request.query_params.get("namespace") or namespace
        if asked != namespace:
            return _problem(403, "this key may only read the status of its own namespace")
        try:
            rows = await self._cached_health(namespace)
        except _NotAvailable as error:
            return _problem(501, str(error))
        except Exception as error:
            logger.exception("status query failed")
            return _problem(503, f"status unavailable: {type(error).__name__}", retry_after=5)
        return JSONResponse({"namespace": namespace, "health": rows})

    async def _cached_health(self, namespace: str) -> list[dict[str, Any]]:
        cached = self._status_cache.get(namespace)
        now = time.monotonic()
        if cached is not None and now - cached[0] < self.config.status_cache_seconds:
            return cached[1]
        rows = await anyio.to_thread.run_sync(self._health_rows, namespace)
        if len(self._status_cache) > 1000:  # bounded: namespaces come from keys only
            self._status_cache.clear()
        self._status_cache[namespace] = (now, rows)
        return rows

    def _health_rows(self, namespace: str) -> list[dict[str, Any]]:
        try:
            analytics: Any = importlib.import_module("span_tree.analytics")
            store_class, not_found = analytics.Store, analytics.StoreNotFound
        except (ImportError, AttributeError) as error:
            raise _NotAvailable("the analytics engine is not installed") from error
        try:
            store = store_class(
                self.location.url,
                storage_options=self.config.storage_options,
                namespace=namespace,
            )
        except not_found:
            return []  # nothing written yet
        try:
            rows = store.health(namespace=namespace).to_dicts()
        finally:
            store.close()
        return [{key: _json_value(value) for key, value in row.items()} for row in rows]

    async def openapi(self, request: Request) -> Response:
        return JSONResponse(openapi_document(self.config.max_body, self.config.max_spans))


class _StoreUnavailable(Exception):
    pass


class _NotAvailable(Exception):
    pass


def _json_value(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_json_value(item) for item in value]
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    return str(value)


def _problem(status: int, message: str, *, retry_after: int | None = None) -> Response:
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return JSONResponse({"error": message}, status_code=status, headers=headers)
