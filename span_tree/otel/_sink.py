"""``OtlpSink``: span-tree spans to any OpenTelemetry backend over OTLP/HTTP protobuf.

Jaeger, Tempo, Honeycomb, an OTel collector, or a span-tree receiver (``/v1/traces``).
It is the HTTP sink with another body: the same bounded retries with backoff, the disk
spool while the backend is away (oldest first when it is back), the circuit breaker and
counted drops; only the encoding (the one OTel mapping, ``_outbound.py``) and the
reading of answers (OTLP partial success) differ.

Configuration follows the OTel exporter variables when arguments are not given:
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` (full URL) or ``OTEL_EXPORTER_OTLP_ENDPOINT``
(base URL, ``/v1/traces`` appended), ``OTEL_EXPORTER_OTLP_(TRACES_)HEADERS``
(``k=v,k2=v2``, values URL-encoded), ``OTEL_EXPORTER_OTLP_(TRACES_)TIMEOUT``
(milliseconds), ``OTEL_EXPORTER_OTLP_(TRACES_)COMPRESSION`` (``gzip``, the default
here, or ``none``).
"""

from __future__ import annotations

import gzip
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from span_tree._record import STATUS_STARTED, FinishedSpan
from span_tree._sanitize import encodable
from span_tree._spool_dir import default_spool_dir
from span_tree.otel import _proto
from span_tree.otel._env import env_headers, env_value, traces_url
from span_tree.otel._outbound import export_request
from span_tree.sinks.http import HttpSink, _retry_after

_RETRYABLE = (408, 429, 502, 503, 504)


class OtlpSink(HttpSink):
    """Export span batches as OTLP/HTTP protobuf (``POST .../v1/traces``).

    Args:
        endpoint: the backend's base URL (``http://collector:4318``) or the full
            ``.../v1/traces`` URL. Default: the ``OTEL_EXPORTER_OTLP_*`` variables, else
            ``http://localhost:4318``.
        headers: request headers (``{"x-honeycomb-team": "..."}``); default:
            ``OTEL_EXPORTER_OTLP_(TRACES_)HEADERS``.
        api_key: for a span-tree receiver: sent as ``X-API-Key``.
        compression: ``"gzip"`` or ``"none"`` (default: the variable, else gzip).
        timeout: seconds one request may take (default: the variable, else 10).
        spool_dir, max_retries, backoff, max_backoff, max_spool_bytes, max_batch_spans,
            max_body_bytes: as for ``HttpSink``.

    ``started`` snapshots are not sent (an OTLP span is always finished; the finished
    version follows). Spans a backend refuses in a partial success are counted in
    ``rejected_spans``.
    """

    def __init__(
        self,
        endpoint: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        api_key: str | None = None,
        compression: str | None = None,
        timeout: float | None = None,
        spool_dir: str | None = None,
        **options: Any,
    ) -> None:
        _proto.trace_service_pb2()  # the extra is missing: say so now, not per batch
        url = traces_url(endpoint)
        if timeout is None:
            millis = env_value("TIMEOUT")
            timeout = float(millis) / 1000 if millis and _is_number(millis) else 10.0
        super().__init__(
            url,
            api_key=api_key or "",
            spool_dir=spool_dir or default_spool_dir(url),
            timeout=timeout,
            **options,
        )
        self.url = url
        self._gzip = (compression or env_value("COMPRESSION") or "gzip").lower() == "gzip"
        sent = dict(env_headers() if headers is None else headers)
        if api_key:
            sent["X-API-Key"] = api_key
        sent["Content-Type"] = "application/x-protobuf"
        if self._gzip:
            sent["Content-Encoding"] = "gzip"
        self._headers = sent
        self._counts.setdefault("skipped_started", 0)

    def _encode_chunk(self, spans: Sequence[FinishedSpan]) -> list[tuple[bytes, int]]:
        finished = [span for span in spans if span.status != STATUS_STARTED]
        self._counts["skipped_started"] += len(spans) - len(finished)
        if not finished:
            return []
        try:
            raw = export_request(finished).SerializeToString()
        except Exception:  # text protobuf refuses (a lone surrogate): repair span by span
            finished = self._repaired(finished)
            if not finished:
                return []
            raw = export_request(finished).SerializeToString()
        if len(raw) > self._max_body_bytes and len(finished) > 1:
            middle = len(finished) // 2
            return self._encode_chunk(finished[:middle]) + self._encode_chunk(finished[middle:])
        body = gzip.compress(raw, compresslevel=1) if self._gzip else raw
        return [(body, len(finished))]

    def _repaired(self, spans: Sequence[FinishedSpan]) -> list[FinishedSpan]:
        kept = []
        for span in spans:
            try:
                export_request([span]).SerializeToString()
            except Exception:
                span = encodable(span)
                try:
                    export_request([span]).SerializeToString()
                except Exception as error:
                    self._counts["dropped_spans"] += 1
                    self._report_once("encoding", f"cannot encode a span: {repr(error)[:300]}")
                    continue
                self._counts["repaired_spans"] += 1
            kept.append(span)
        return kept

    def _post(self, body: bytes) -> tuple[str, float | None, int | None]:
        """One request: outcome ("sent", "rejected", "retry"), Retry-After, None."""
        if self._client is None:
            self._client = httpx.Client(timeout=self._timeout)
        try:
            response = self._client.post(self.url, content=body, headers=self._headers)
        except httpx.HTTPError as error:
            self._report_once("network", f"cannot reach {self.url}: {type(error).__name__}")
            return "retry", None, None
        status = response.status_code
        if 200 <= status < 300:
            self._count_partial(response)
            return "sent", None, None
        if status in _RETRYABLE or status >= 500:
            return "retry", _retry_after(response.headers.get("retry-after")), None
        # 400/401/403/404/413/415: sending it again cannot help; keep the reason, drop it.
        self._report_once(str(status), f"backend refused a batch: {status} {_reason(response)}")
        return "rejected", None, None

    def _count_partial(self, response: httpx.Response) -> None:
        if not response.content:
            return
        try:
            answer = _proto.trace_service_pb2().ExportTraceServiceResponse.FromString(
                response.content
            )
        except Exception:
            return  # not an OTLP answer (a proxy's page): the batch was accepted
        rejected = answer.partial_success.rejected_spans
        if rejected > 0:
            # Counted as sent too (the request was delivered), and as lost here.
            self._counts["rejected_spans"] += rejected
            message = answer.partial_success.error_message[:300]
            self._report_once("partial", f"backend rejected {rejected} spans: {message}")


def _reason(response: httpx.Response) -> str:
    """The message of an OTLP error answer (a google.rpc.Status), else the text."""
    try:
        from google.rpc import status_pb2

        message = status_pb2.Status.FromString(response.content).message
        if message:
            return str(message)[:300]
    except Exception:
        pass
    return response.text[:300]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
