"""The HTTP sink: batches of spans to a span-tree receiver, with retries and a disk spool.

Runs on the processor's worker thread, never on the application's. Each request body
carries a batch id (``"batch"``, a KSUID) that every resend of it keeps, so the
receiver writes it idempotently. Every wait is
bounded: a few quick retries with backoff, then the batch goes to a local spool
directory and the sink stops trying for a while (a circuit breaker), so a receiver
that is down costs the worker milliseconds per batch, not seconds. Spooled batches are
sent again, oldest first, before any newer batch once the receiver answers; this keeps
a span's versions (started, then finished) in the order they were produced. What the
spool cannot hold (``max_spool_bytes``) is dropped and counted, never raised. The
retries, the breaker and the spool are ``sinks._delivery``'s, shared with the Parquet
sink.
"""

from __future__ import annotations

import contextlib
import email.utils
import gzip
import itertools
import json
import os
import sys
import threading
import time
import weakref
from collections.abc import Sequence
from typing import Any

import httpx
import orjson

from span_tree._ids import new_trace_id
from span_tree._record import FinishedSpan, span_to_json_dict
from span_tree._sanitize import encodable
from span_tree._spool_dir import default_spool_dir
from span_tree.sinks._delivery import DONE, RETRY, Outcome, Retry, Spool, SpoolFull, give_up

SPANS_PATH = "/v1/spans"
_SPOOL_SUFFIX = ".json.gz"


class HttpSink:
    """Send span batches to a receiver's ``POST /v1/spans``.

    Args:
        endpoint: the receiver's base URL (``https://traces.example.com``) or the full
            ``.../v1/spans`` URL.
        api_key: the key sent as ``X-API-Key`` (it decides the namespace).
        spool_dir: where undeliverable batches wait (default: one directory per
            endpoint under ``SPANTREE_SPOOL_DIR``, else ``~/.cache/spantree/spool``,
            else the temp directory).
        timeout: seconds one request may take (connecting: at most 2 s).
        max_retries: quick retries of a failed request before spooling it.
        backoff: first retry delay in seconds; doubles per retry and per failed round.
        max_backoff: longest pause between rounds, and cap on a ``Retry-After``.
        max_spool_bytes: spool size limit; batches beyond it are dropped and counted.
        max_batch_spans: most spans per request (the receiver's limit is 10,000).
        max_body_bytes: largest body before compression; bigger batches are split (the
            receiver's default limit is 5 MiB, as sent and once decompressed).
        headers: extra request headers (proxies, tenancy...).
    """

    def __init__(
        self,
        endpoint: str,
        *,
        api_key: str,
        spool_dir: str | None = None,
        timeout: float = 10.0,
        max_retries: int = 2,
        backoff: float = 0.1,
        max_backoff: float = 30.0,
        max_spool_bytes: int = 256 * 1024 * 1024,
        max_batch_spans: int = 1000,
        max_body_bytes: int = 4 * 1024 * 1024,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.url = _spans_url(endpoint)
        self._headers = {
            **(headers or {}),
            "X-API-Key": api_key,
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
        }
        self.spool = Spool(
            spool_dir or default_spool_dir(self.url),
            suffix=_SPOOL_SUFFIX,
            max_bytes=max_spool_bytes,
        )
        self._timeout = httpx.Timeout(timeout, connect=min(2.0, timeout))
        # Quick retries, then a pause (the breaker) that doubles per failed round.
        self._retry = Retry(
            attempts=max_retries + 1,
            backoff=backoff,
            down_delay=2 * backoff,
            max_down_delay=max_backoff,
        )
        self._max_batch_spans = max(1, max_batch_spans)
        self._max_body_bytes = max_body_bytes
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()  # export/flush/shutdown may race at exit
        # At exit: the monotonic time by which the receiver must have answered; after
        # it, what is left goes to the spool at once (set from another thread).
        self._exit_deadline: float | None = None
        self._in_hand = 0  # spans of the export running now, not yet sent or spooled
        self._sequence = itertools.count()
        self._reported: set[str] = set()
        # A forked child must not share the parent's connections: it opens its own.
        own = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: _forget_client(own))
        self._counts = dict.fromkeys(
            (
                "sent_spans",
                "sent_requests",
                "spooled_spans",
                "replayed_spans",
                "rejected_spans",
                "dropped_spans",
                "repaired_spans",  # sent with unencodable text replaced (U+FFFD)
            ),
            0,
        )

    # -- Sink protocol -----------------------------------------------------------------
    def export(self, batch: Sequence[FinishedSpan]) -> None:
        """Send ``batch`` (or spool it); never raises for network trouble."""
        if not batch:
            return
        with self._lock:
            self._in_hand = len(batch)
            try:
                self._export(batch)
            finally:
                self._in_hand = 0

    def _export(self, batch: Sequence[FinishedSpan]) -> None:
        bodies = list(self._encode(batch))
        if self.spool.pending() or self._retry.is_open() or self._past_exit():
            # Older batches wait in the spool: queue behind them to keep order.
            for body, count in bodies:
                self._spool(body, count)
            if not self._retry.is_open():
                self._drain(deadline=self._limit(time.monotonic() + self._timeout_seconds()))
            return
        for index, (body, count) in enumerate(bodies):
            if not self._deliver(body, count, replay=False):
                for rest_body, rest_count in bodies[index:]:
                    self._spool(rest_body, rest_count)
                return
            self._in_hand -= count

    def force_flush(self, timeout: float) -> bool:
        """Try to deliver the spool within ``timeout``; True when nothing is left."""
        deadline = self._limit(time.monotonic() + timeout)
        with self._lock:
            if not self.spool.pending():
                return True
            # Honour a pause (Retry-After, backoff) when it ends within the timeout.
            wait = self._retry.open_until - time.monotonic()
            if wait >= timeout:
                return False
            if wait > 0:
                time.sleep(wait)
            return self._drain(deadline=deadline)

    def shutdown(self) -> None:
        """Make a last bounded attempt at the spool, then close the connection pool.

        What is still spooled stays on disk and is sent by the next process using the
        same spool directory.
        """
        with self._lock:
            if not self._retry.is_open():
                self._drain(deadline=self._limit(time.monotonic() + 2.0))
            if self._client is not None:
                self._client.close()
                self._client = None

    def tick(self) -> None:
        """Send spooled batches once the pause is over, even if nothing new is exported.

        The processor's worker calls this on each wake-up (about twice a second); it
        costs a directory listing when the spool is empty.
        """
        if self._retry.is_open() or self._past_exit() or not self.spool.pending():
            return
        with self._lock:
            self._drain(deadline=self._limit(time.monotonic() + self._timeout_seconds()))

    def set_exit_deadline(self, deadline: float | None) -> None:
        """The process is exiting: the receiver gets until ``deadline`` (monotonic), then
        what is left is spooled at once. ``None``: running normally again."""
        self._exit_deadline = deadline

    def pending_spans(self) -> int:
        """Spans of the running export neither sent nor spooled yet."""
        return self._in_hand

    def _limit(self, deadline: float) -> float:
        exit_deadline = self._exit_deadline
        return deadline if exit_deadline is None else min(deadline, exit_deadline)

    def _past_exit(self) -> bool:
        exit_deadline = self._exit_deadline
        return exit_deadline is not None and time.monotonic() >= exit_deadline

    def lost_spans(self) -> int:
        """Spans refused by the receiver or dropped (spool full, unencodable) so far."""
        return self._counts["dropped_spans"] + self._counts["rejected_spans"]

    def stats(self) -> dict[str, Any]:
        """Counters: sent, retried, spooled, replayed, rejected (4xx), dropped; spool size."""
        result: dict[str, Any] = dict(self._counts)
        result["retries"] = self._retry.retries
        result["spool_files"] = len(self.spool.pending())
        result["spool_bytes"] = self.spool.size()
        result["spool_dir"] = self.spool.directory
        return result

    # -- encoding ----------------------------------------------------------------------
    def _encode(self, batch: Sequence[FinishedSpan]) -> list[tuple[bytes, int]]:
        bodies: list[tuple[bytes, int]] = []
        for start in range(0, len(batch), self._max_batch_spans):
            bodies.extend(self._encode_chunk(batch[start : start + self._max_batch_spans]))
        return bodies

    def _encode_chunk(self, spans: Sequence[FinishedSpan]) -> list[tuple[bytes, int]]:
        # The body's batch identity, chosen once: the receiver names its files after it,
        # so a retry or a spool replay of this body (even after a receiver that wrote
        # but answered too late) replaces those files instead of adding rows.
        document = {
            "batch": new_trace_id(),
            "tags": {},
            "spans": [span_to_json_dict(span) for span in spans],
        }
        try:
            raw = _dumps(document)
        except ValueError:  # a value no encoder takes (a lone surrogate): span by span
            spans, document["spans"] = self._encodable(spans)
            if not spans:
                return []
            raw = _dumps(document)
        # The receiver limits the body once decompressed too: split on the raw size.
        if len(raw) <= self._max_body_bytes or len(spans) == 1:
            return [(gzip.compress(raw, compresslevel=1), len(spans))]
        middle = len(spans) // 2
        return self._encode_chunk(spans[:middle]) + self._encode_chunk(spans[middle:])

    def _encodable(
        self, spans: Sequence[FinishedSpan]
    ) -> tuple[list[FinishedSpan], list[dict[str, Any]]]:
        """Each span as it encodes, else with its text repaired (lone surrogates become
        U+FFFD), so one bad value costs nothing; a span still refused is counted."""
        kept: list[FinishedSpan] = []
        dicts: list[dict[str, Any]] = []
        for span in spans:
            record = span_to_json_dict(span)
            try:
                _dumps(record)
            except ValueError:
                span = encodable(span)
                record = span_to_json_dict(span)
                try:
                    _dumps(record)
                except ValueError as error:
                    self._counts["dropped_spans"] += 1
                    self._report_once("encoding", f"cannot encode a span: {repr(error)[:300]}")
                    continue
                self._counts["repaired_spans"] += 1
            kept.append(span)
            dicts.append(record)
        return kept, dicts

    # -- sending -----------------------------------------------------------------------
    def _timeout_seconds(self) -> float:
        return float(self._timeout.read or 10.0)

    def _deliver(self, body: bytes, count: int, *, replay: bool) -> bool:
        """Send one body with quick retries. True when done with it (sent or refused).

        When the receiver refuses one span (422 naming its index), that span is dropped
        and counted and the rest of the batch is sent again.
        """
        sending = (body, count)

        def attempt(deadline: float | None) -> Outcome:
            nonlocal sending
            while True:
                body, count = sending
                outcome, retry_after, bad_index = self._post(body)
                if outcome == "sent":
                    self._counts["sent_requests"] += 1
                    self._counts["replayed_spans" if replay else "sent_spans"] += count
                    return DONE
                if outcome != "rejected":
                    # The receiver said when (Retry-After): no quick retry before that.
                    return RETRY if retry_after is None else give_up(retry_after)
                rest = _without_span(body, bad_index) if count > 1 else None
                if rest is None:
                    self._counts["rejected_spans"] += count
                    return DONE
                sending = (rest, count - 1)
                self._counts["rejected_spans"] += 1

        return self._retry.run(attempt, limit=lambda: self._exit_deadline)

    def _post(self, body: bytes) -> tuple[str, float | None, int | None]:
        """One request: outcome ("sent", "rejected", "retry"), Retry-After, bad span index."""
        if self._client is None:
            self._client = httpx.Client(timeout=self._timeout)
        timeout = self._timeout
        exit_deadline = self._exit_deadline
        if exit_deadline is not None:  # exiting: no request may outlast the deadline
            left = exit_deadline - time.monotonic()
            if left <= 0:
                return "retry", None, None
            timeout = httpx.Timeout(min(self._timeout_seconds(), left), connect=min(2.0, left))
        try:
            response = self._client.post(
                self.url, content=body, headers=self._headers, timeout=timeout
            )
        except httpx.HTTPError as error:
            self._report_once("network", f"cannot reach {self.url}: {type(error).__name__}")
            return "retry", None, None
        status = response.status_code
        if 200 <= status < 300:
            return "sent", None, None
        if status in (408, 429) or status >= 500:
            return "retry", _retry_after(response.headers.get("retry-after")), None
        # 401/403/413/415/422: sending it again cannot help; keep the reason, drop it.
        self._report_once(str(status), f"receiver refused a batch: {status} {response.text[:300]}")
        return "rejected", None, _bad_index(response) if status == 422 else None

    # -- spool -------------------------------------------------------------------------
    def _spool(self, body: bytes, count: int) -> None:
        name = f"{time.time_ns():020d}-{os.getpid()}-{next(self._sequence):06d}-{count}"
        try:
            self.spool.put(name + _SPOOL_SUFFIX, body)
        except SpoolFull:
            self._counts["dropped_spans"] += count
            self._report_once("spool-full", f"spool {self.spool.directory} is full: dropping spans")
            return
        except OSError as error:
            self._counts["dropped_spans"] += count
            self._report_once("spool-error", f"cannot spool to {self.spool.directory}: {error}")
            return
        self._counts["spooled_spans"] += count

    def _drain(self, *, deadline: float) -> bool:
        """Send spooled batches oldest first until done, a failure, or ``deadline``."""
        return self.spool.replay(
            lambda name, body: self._deliver(body, _count_of(name), replay=True),
            should_stop=lambda: time.monotonic() >= deadline,
        )

    def _report_once(self, kind: str, message: str) -> None:
        # Tell the user once per kind of trouble, on stderr (not logging: this thread's
        # log records must never turn into spans). The API key is never part of it.
        if kind in self._reported:
            return
        self._reported.add(kind)
        with contextlib.suppress(Exception):
            print(f"span_tree: http sink: {message}", file=sys.stderr)


def _dumps(document: Any) -> bytes:
    """JSON bytes of ``document``.

    Raises:
        ValueError: a value cannot be encoded (a lone surrogate in some text).
    """
    try:
        return orjson.dumps(document, default=repr, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:  # e.g. an integer beyond 64 bits: the stdlib writes it anyway
        try:
            return json.dumps(document, default=repr, ensure_ascii=False).encode()
        except TypeError as error:
            raise ValueError(str(error)) from None


def _forget_client(ref: weakref.ref[HttpSink]) -> None:
    sink = ref()
    if sink is not None:
        sink._client = None  # not closed: the parent still uses those sockets
        sink._lock = threading.Lock()


def _spans_url(endpoint: str) -> str:
    endpoint = endpoint.rstrip("/")
    return endpoint if endpoint.endswith(SPANS_PATH) else endpoint + SPANS_PATH


def _bad_index(response: httpx.Response) -> int | None:
    try:
        index = response.json().get("index")
    except (ValueError, AttributeError):
        return None
    return index if isinstance(index, int) and not isinstance(index, bool) else None


def _without_span(body: bytes, index: int | None) -> bytes | None:
    """The gzip body without its span at ``index`` (None if that cannot be done)."""
    if index is None:
        return None
    try:
        # The stdlib, not orjson: it reads back integers beyond 64 bits too (rare path).
        document = json.loads(gzip.decompress(body))
        spans = document["spans"]
        if not 0 <= index < len(spans):
            return None
        del spans[index]
        text = json.dumps(document, ensure_ascii=False)
        return gzip.compress(text.encode(), compresslevel=1)
    except (OSError, EOFError, ValueError, TypeError, KeyError):
        return None


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - time.time())


def _count_of(path: str) -> int:
    """The span count a spooled body's name ends with."""
    name = os.path.basename(path)[: -len(_SPOOL_SUFFIX)]
    try:
        return int(name.rsplit("-", 1)[1])
    except (IndexError, ValueError):
        return 0
