"""OTLP/HTTP on the receiver: ``POST /v1/traces`` and ``POST /v1/logs``.

Any OpenTelemetry SDK or collector exporting OTLP/HTTP (protobuf or JSON, gzip or not)
lands in the store with the receiver's own API keys (``X-API-Key: st_...``, or
``Authorization: Bearer st_...``). Answers follow the OTLP/HTTP specification, so
exporters retry exactly what may succeed later:

- 200 with an ``Export{Trace,Logs}ServiceResponse``; spans the store cannot hold (zero
  ids, impossible times) and spans starting outside the receiver's start-time window
  (``--max-age-days``, clock skew) are left out and counted in ``partial_success`` with
  the reasons; the rest is written before the answer.
- 400 (body cannot be decoded, spans on more days than ``--max-partitions``), 401 (key),
  413 (body or decompressed body too large, too many spans), 415 (content type or
  encoding): not retried by exporters; the body is a ``google.rpc.Status`` saying why.
- 429 (too many requests waiting) and 503 (the store cannot be written) with
  ``Retry-After``: retried.

The wire format comes from ``opentelemetry-proto`` (the ``span-tree[otel]`` extra),
imported on the first OTLP request; without it these routes answer 501 naming the extra
and the rest of the receiver works as before.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import anyio
import pyarrow as pa
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from span_tree._record import SPAN_COLUMNS, iso_from_us
from span_tree._sanitize import DEFAULT_SCRUB_KEYS, scrub_pattern
from span_tree.otel._columns import MappedColumns
from span_tree.receiver._app import _Service, _StoreUnavailable
from span_tree.receiver._ingest import IngestError, gunzip_bounded
from span_tree.receiver._window import check_partitions, outside_window, window_bounds
from span_tree.storage._ingest import content_batch_id

if TYPE_CHECKING:
    from span_tree.otel._mapping import Mapped
    from span_tree.storage._writer import PreparedFile

logger = logging.getLogger("span_tree.receiver")

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
_SCRUB = scrub_pattern(DEFAULT_SCRUB_KEYS)
_START_TIME = SPAN_COLUMNS.index("start_time")
# google.rpc.Code values for the Status body of an error answer.
_RPC_CODES = {400: 3, 401: 16, 413: 8, 415: 3, 429: 8, 501: 12, 503: 14}


class _Refused(Exception):
    def __init__(self, status: int, message: str, retry_after: int | None = None) -> None:
        # Bounded: a decoder's message may quote the offending value (any size).
        message = message if len(message) <= 500 else message[:500] + "…"
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after


class _Signal:
    """What differs between the traces and the logs endpoint."""

    def __init__(self, kind: str) -> None:
        self.kind = kind  # "traces" or "logs"

    def modules(self) -> tuple[Any, Any]:
        from span_tree.otel import _mapping, _proto

        service = _proto.trace_service_pb2() if self.kind == "traces" else _proto.logs_service_pb2()
        return service, _mapping

    def request_class(self) -> Any:
        service, _ = self.modules()
        if self.kind == "traces":
            return service.ExportTraceServiceRequest
        return service.ExportLogsServiceRequest

    def count(self, request: Any) -> int:
        _, mapping = self.modules()
        if self.kind == "traces":
            return int(mapping.count_spans(request))
        return int(mapping.count_log_records(request))

    def map(self, request: Any, namespace: str) -> Mapped | MappedColumns:
        """Traces as the writer's columns (no record per span), logs as records."""
        _, mapping = self.modules()
        convert: Callable[..., Mapped | MappedColumns]
        if self.kind == "traces":
            from span_tree.otel._columns import columns_from_traces

            convert = columns_from_traces
        else:
            convert = mapping.records_from_logs
        return convert(request, namespace=namespace, scrub=_SCRUB)

    def response(self, mapped: Mapped | MappedColumns) -> Any:
        service, _ = self.modules()
        if self.kind == "traces":
            answer = service.ExportTraceServiceResponse()
            if mapped.rejected:
                answer.partial_success.rejected_spans = mapped.rejected
                answer.partial_success.error_message = mapped.message()
        else:
            answer = service.ExportLogsServiceResponse()
            if mapped.rejected:
                answer.partial_success.rejected_log_records = mapped.rejected
                answer.partial_success.error_message = mapped.message()
        return answer


def otlp_routes(service: _Service) -> list[Route]:
    """The OTLP routes of a receiver service (the hook ``_app._build`` calls)."""
    traces = _Endpoint(service, _Signal("traces"))
    logs = _Endpoint(service, _Signal("logs"))
    return [
        Route("/v1/traces", traces.handle, methods=["POST"]),
        Route("/v1/logs", logs.handle, methods=["POST"]),
    ]


def api_key(request: Request) -> str | None:
    """The key of ``X-API-Key``, else of ``Authorization: Bearer <key>``."""
    key = request.headers.get("x-api-key")
    if key:
        return key.strip()
    scheme, _, value = request.headers.get("authorization", "").strip().partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


class _Endpoint:
    def __init__(self, service: _Service, signal: _Signal) -> None:
        self.service = service
        self.signal = signal

    async def handle(self, request: Request) -> Response:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        as_json = content_type == JSON
        try:
            return await self._handle(request, content_type)
        except _Refused as refused:
            return _status_response(refused, as_json)

    async def _handle(self, request: Request, content_type: str) -> Response:
        service = self.service
        key = api_key(request)
        namespace = None
        if key:
            namespace = await anyio.to_thread.run_sync(service.keys.namespace_of, key)
        if namespace is None:
            raise _Refused(
                401, "missing or invalid API key (header X-API-Key or Authorization: Bearer)"
            )
        if content_type not in (PROTOBUF, JSON):
            raise _Refused(
                415, f"unsupported Content-Type {content_type!r}: use {PROTOBUF} or {JSON}"
            )
        encoding = request.headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("identity", "", "gzip"):
            raise _Refused(415, f"unsupported Content-Encoding {encoding!r}: use gzip or none")
        try:
            self.signal.modules()
        except ImportError as error:
            raise _Refused(501, str(error)) from None
        limiter = service.requests
        if limiter.statistics().tasks_waiting >= limiter.total_tokens:
            raise _Refused(429, "too many requests waiting; retry later", retry_after=1)
        try:
            async with limiter:
                body = await service._read_body(request)
                async with service.parsing:
                    mapped, files = await anyio.to_thread.run_sync(
                        self._prepare, body, encoding == "gzip", content_type == JSON, namespace
                    )
                del body
                if files:
                    async with service.writing:
                        await anyio.to_thread.run_sync(service._put, files)
        except IngestError as error:
            status = 400 if error.status == 422 else error.status
            raise _Refused(status, _ingest_message(error)) from None
        except ClientDisconnect:
            raise _Refused(400, "the client went away before sending the whole body") from None
        except _StoreUnavailable as error:
            raise _Refused(503, f"the store could not be written: {error}", retry_after=1) from None
        service.accepted_requests += 1
        service.accepted_spans += sum(prepared.rows for prepared in files)
        return _message_response(self.signal.response(mapped), content_type == JSON)

    def _prepare(
        self, body: bytes, gzipped: bool, as_json: bool, namespace: str
    ) -> tuple[Mapped | MappedColumns, list[PreparedFile]]:
        """CPU part: decode, map, encode the Parquet files (nothing visible yet)."""
        from span_tree.storage._writer import prepare_column_files, prepare_files
        from span_tree.storage.schema import gc_paused

        if gzipped:
            body = gunzip_bounded(body, limit=self.service.config.max_body)
        message = self._decode(body, as_json)
        count = self.signal.count(message)
        limit = self.service.config.max_spans
        if count > limit:
            what = "spans" if self.signal.kind == "traces" else "log records"
            raise _Refused(413, f"too many {what} in one request: {count} (limit {limit})")
        try:
            # Mapping allocates containers per span and frees none: cyclic GC passes in
            # between would be wasted (as in parse_body).
            with gc_paused():
                mapped = self.signal.map(message, namespace)
        except Exception as error:
            # A body the mapping did not foresee is still the client's: say so (400)
            # rather than fail with a 5xx, and log it to fix the mapping.
            logger.exception("could not map an OTLP %s request", self.signal.kind)
            raise _Refused(400, f"the request cannot be stored: {error!r}") from None
        if isinstance(mapped, MappedColumns):
            mapped = self._columns_within_window(mapped)
            starts: Sequence[int] = mapped.columns[_START_TIME] if mapped.columns else ()
        else:  # log rows carry their request's time: only the partition limit applies
            starts = [record.start_time for record in mapped.records]
            check_partitions(starts, self.service.config.max_partitions)
        if not starts:
            return mapped, []
        try:
            # OTLP exporters resend the same bytes after a 429/503 or a lost answer: a
            # batch id made from them puts the same file names again (no duplicate rows).
            digest = hashlib.sha256(f"{self.signal.kind}\0{namespace}\0".encode())
            digest.update(body)
            batch_id = content_batch_id(max(starts), digest)
            if isinstance(mapped, MappedColumns):
                return mapped, prepare_column_files(mapped.columns, batch_id=batch_id)
            return mapped, prepare_files(mapped.records, batch_id=batch_id)
        except Exception as error:
            # Mapping let through something Arrow cannot hold: a mapping gap, and still
            # the body's fault; nothing was written.
            logger.exception("could not encode an OTLP %s request", self.signal.kind)
            raise _Refused(400, f"the request cannot be stored: {error!r}") from None

    def _columns_within_window(self, mapped: MappedColumns) -> MappedColumns:
        """Spans starting outside the receiver's window are rejected one by one (partial
        success, as a collector's filter does), not the whole request: an exporter
        drops a refused batch. A request over the partition limit is refused (400)."""
        config = self.service.config
        columns = mapped.columns
        bad = outside_window(
            columns[_START_TIME] if columns else (),
            max_age_days=config.max_age_days,
            max_future_days=config.max_future_days,
        )
        if bad:
            earliest, latest = window_bounds(config.max_age_days, config.max_future_days)
            reason = _outside_reason(len(bad), earliest, latest)
            skipped = set(bad)
            kept = [i for i in range(len(columns[_START_TIME])) if i not in skipped]
            mapped = mapped._replace(
                columns=[_kept(column, kept) for column in columns] if kept else [],
                accepted=mapped.accepted - len(bad),
                rejected=mapped.rejected + len(bad),
                reasons=[*mapped.reasons, reason],
            )
        starts = mapped.columns[_START_TIME] if mapped.columns else ()
        check_partitions(starts, config.max_partitions)
        return mapped

    def _decode(self, body: bytes, as_json: bool) -> Any:
        from span_tree.otel import _proto

        message = self.signal.request_class()()
        if as_json:
            import orjson

            try:
                document = orjson.loads(body)
                if not isinstance(document, dict):
                    raise ValueError("the body must be a JSON object")
                _hex_ids_to_base64(document)
                _proto.json_format().ParseDict(document, message, ignore_unknown_fields=True)
            except Exception as error:
                raise _Refused(400, f"invalid OTLP/JSON body: {error}") from None
            return message
        try:
            message.ParseFromString(body)
        except Exception as error:
            raise _Refused(400, f"invalid OTLP protobuf body: {error}") from None
        return message


_ID_FIELDS = ("traceId", "spanId", "parentSpanId")
_CONTAINERS = (
    ("resourceSpans", "scopeSpans", "spans"),
    ("resourceLogs", "scopeLogs", "logRecords"),
)


def _hex_ids_to_base64(document: dict[str, Any]) -> None:
    """OTLP/JSON writes ids as hex, protobuf's JSON mapping reads bytes as base64.

    An id that is not hex becomes empty, so that span alone is rejected (partial
    success) rather than the whole request.
    """
    for outer, middle, inner in _CONTAINERS:
        for resource in _list(document.get(outer)):
            for scope in _list(resource.get(middle)):
                for item in _list(scope.get(inner)):
                    _convert_ids(item)
                    for link in _list(item.get("links")):
                        _convert_ids(link)


def _list(value: Any) -> list[Any]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _convert_ids(item: dict[str, Any]) -> None:
    for field in _ID_FIELDS:
        value = item.get(field)
        if isinstance(value, str):
            try:
                raw = bytes.fromhex(value)
            except ValueError:
                raw = b""
            item[field] = base64.b64encode(raw).decode("ascii")


def _kept(column: Sequence[Any], kept: list[int]) -> Sequence[Any]:
    """The rows ``kept`` of a column (a list, or an Arrow array on the columns path)."""
    if isinstance(column, pa.Array):
        return column.take(pa.array(kept, pa.int64()))  # type: ignore[no-any-return]
    return [column[index] for index in kept]


def _outside_reason(count: int, earliest: int, latest: int) -> str:
    return (
        f"{count} spans start outside the accepted window "
        f"{iso_from_us(earliest)} .. {iso_from_us(latest)}"
    )


def _ingest_message(error: IngestError) -> str:
    message = str(error.detail.get("error", "invalid request"))
    limit = error.detail.get("limit")
    return f"{message} (limit {limit} bytes)" if limit is not None else message


def _message_response(message: Any, as_json: bool, status: int = 200) -> Response:
    if as_json:
        from span_tree.otel import _proto

        text = _proto.json_format().MessageToJson(message, indent=None)
        return Response(text, status_code=status, media_type=JSON)
    return Response(message.SerializeToString(), status_code=status, media_type=PROTOBUF)


def _status_response(refused: _Refused, as_json: bool) -> Response:
    """An error answer: a ``google.rpc.Status`` (protobuf or JSON) saying why."""
    headers = {"Retry-After": str(refused.retry_after)} if refused.retry_after else None
    code = _RPC_CODES.get(refused.status, 2)
    try:
        from google.rpc import status_pb2
    except ImportError:
        status_pb2 = None
    if as_json or status_pb2 is None:
        import orjson

        body = orjson.dumps({"code": code, "message": refused.message})
        return Response(body, status_code=refused.status, media_type=JSON, headers=headers)
    try:
        status = status_pb2.Status(code=code, message=refused.message)
        data = status.SerializeToString()
    except Exception:  # a message protobuf cannot hold (invalid UTF-8 surrogates)
        data = binascii.b2a_hex(refused.message.encode("utf-8", "replace"))
    return Response(data, status_code=refused.status, media_type=PROTOBUF, headers=headers)
