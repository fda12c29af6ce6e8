"""A small, fully deterministic store for the analytics tests (no tests in this module).

Every id, time and message is fixed, so views and CLI outputs can be compared with
hand-computed values and golden files. Layout of the data:

- app ``checkout`` (namespace ``shop``), run series ``checkout`` with tags env=prod:
  T1 succeeded, T2 failed, T3 failed (same bug as T2, other ids), T4 succeeded.
  ``db.query`` durations 100, 200 (T1), 300 (T2), 400, 1000 (T4) µs.
  T4 logs a handled KeyError; six ``ping`` traces succeed.
- app ``reporter``: T5 fails with a different bug.
- T1 also holds ``background`` (started, then finished: two files) and ``late``
  (finished, then a stale started version written afterwards).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

from span_tree._ids import trace_id_from_w3c
from span_tree._record import Event, FinishedSpan, HandledError
from span_tree.storage import open_store, write_spans

BASE_US = int(datetime(2026, 1, 10, 9, 0, tzinfo=UTC).timestamp() * 1_000_000)
MINUTE_US = 60_000_000


def trace_id(seed: str, start_us: int) -> str:
    """A KSUID that depends only on ``seed`` and the start time."""
    payload = hashlib.sha256(seed.encode()).hexdigest()[:32]
    return trace_id_from_w3c(payload, start_us // 1_000_000)


def span_id(seed: str) -> str:
    """A 16-hex span id that depends only on ``seed``."""
    return hashlib.sha256(("span:" + seed).encode()).hexdigest()[:16]


def traceback_text(file: str, function: str, error: str) -> str:
    """A Python-style traceback whose innermost frame is ``file``/``function``."""
    return (
        "Traceback (most recent call last):\n"
        '  File "/app/shop/server.py", line 88, in handle\n'
        "    return view(request)\n"
        f'  File "{file}", line 10, in {function}\n'
        "    raise error\n"
        f"{error}\n"
    )


def make_span(
    trace: str,
    name: str,
    *,
    start_us: int,
    duration_us: int | None,
    parent: str | None = None,
    status: str = "succeeded",
    app: str = "checkout",
    seq: int = 1,
    seed: str | None = None,
    tags: dict[str, str] | None = None,
    error: tuple[str, str, str] | None = None,
    handled: tuple[HandledError, ...] = (),
    events: tuple[Event, ...] = (),
) -> FinishedSpan:
    """One span record; ``error`` is (type, message, traceback)."""
    error_type, message, traceback = error if error else (None, None, None)
    return FinishedSpan(
        namespace="shop",
        date=datetime.fromtimestamp(start_us / 1e6, tz=UTC).strftime("%Y-%m-%d"),
        trace_id=trace,
        span_id=span_id(seed or f"{trace}:{name}:{start_us}"),
        parent_id=parent,
        seq=seq,
        name=name,
        kind="internal",
        status=status,
        level="ERROR" if status == "failed" else "INFO",
        start_time=start_us,
        end_time=None if duration_us is None else start_us + duration_us,
        duration_us=duration_us,
        file="/app/shop/views.py",
        line=12,
        function=name,
        app=app,
        app_version="1.0.0",
        host="web-1",
        pid=100,
        thread="MainThread",
        task=None,
        tags=tags if tags is not None else {"env": "prod"},
        attributes={},
        error_type=error_type,
        error_message=message,
        error_traceback=traceback,
        handled_errors=handled,
        events=events,
        links=(),
        ref_src=(),
        ref_dest=(),
        written_at=None,
        schema_version=1,
    )


def _not_found(order: int, path: str) -> tuple[str, str, str]:
    message = f"order {order} not found in '{path}'"
    return (
        "ValueError",
        message,
        traceback_text("/app/shop/orders.py", "load_order", f"ValueError: {message}"),
    )


def _checkout(
    index: int, *, status: str, durations: tuple[int, ...], error: tuple[str, str, str] | None
) -> list[FinishedSpan]:
    start = BASE_US + index * MINUTE_US
    trace = trace_id(f"T{index}", start)
    root = make_span(
        trace, "checkout", start_us=start, duration_us=5_000, status=status, error=error
    )
    children = [
        make_span(
            trace,
            "db.query",
            start_us=start + 10 * (n + 1),
            duration_us=duration,
            parent=root.span_id,
            seq=n + 2,
        )
        for n, duration in enumerate(durations)
    ]
    return [root, *children]


TRACE_IDS: dict[str, str] = {}


def build_records() -> tuple[list[FinishedSpan], list[FinishedSpan]]:
    """The store's spans: (first write, second write)."""
    first: list[FinishedSpan] = []
    t1 = _checkout(1, status="succeeded", durations=(100, 200), error=None)
    t2 = _checkout(2, status="failed", durations=(300,), error=_not_found(123, "/srv/data/a.csv"))
    t3 = _checkout(3, status="failed", durations=(), error=_not_found(98765, "/srv/b/c.csv"))
    handled = HandledError(
        BASE_US + 4 * MINUTE_US + 50,
        "KeyError",
        "'cache miss for user 5f3a9b2c-1d2e-4f5a-9b8c-7d6e5f4a3b2c'",
        traceback_text("/app/shop/cache.py", "get", "KeyError: ..."),
    )
    event = Event(BASE_US + 4 * MINUTE_US + 60, 9, "WARNING", "shop", "retrying", None, None, {})
    t4 = _checkout(4, status="succeeded", durations=(400, 1000), error=None)
    t4[0] = t4[0]._replace(handled_errors=(handled,), events=(event,))
    start5 = BASE_US + 5 * MINUTE_US
    trace5 = trace_id("T5", start5)
    bad_header = "bad header in row 7"
    t5 = [
        make_span(
            trace5,
            "report",
            start_us=start5,
            duration_us=9_000,
            status="failed",
            app="reporter",
            tags={"env": "prod", "job": "daily"},
            error=(
                "ValueError",
                bad_header,
                traceback_text("/app/reports/parse.py", "parse_header", bad_header),
            ),
        )
    ]
    pings = []
    for n in range(6):
        start = BASE_US + (10 + n) * MINUTE_US
        pings.append(make_span(trace_id(f"P{n}", start), "ping", start_us=start, duration_us=50))
    t1_root = t1[0]
    background_started = make_span(
        t1_root.trace_id,
        "background",
        start_us=BASE_US + MINUTE_US + 500,
        duration_us=None,
        parent=t1_root.span_id,
        status="started",
        seed="background",
        seq=5,
    )
    background_done = background_started._replace(
        status="succeeded", end_time=background_started.start_time + 700, duration_us=700
    )
    late_done = make_span(
        t1_root.trace_id,
        "late",
        start_us=BASE_US + MINUTE_US + 600,
        duration_us=800,
        parent=t1_root.span_id,
        seed="late",
        seq=6,
    )
    late_stale = late_done._replace(status="started", end_time=None, duration_us=None)
    for name, records in (("T1", t1), ("T2", t2), ("T3", t3), ("T4", t4), ("T5", t5)):
        TRACE_IDS[name] = records[0].trace_id
    first = [*t1, *t2, *t3, *t4, *t5, *pings, background_started, late_done]
    return first, [background_done, late_stale]


def build_store(root: Path) -> str:
    """Write the fixture store under ``root`` and return its path."""
    location = open_store(str(root))
    first, second = build_records()
    write_spans(location, first)
    write_spans(location, second)
    return str(root)


build_records()  # fills TRACE_IDS at import, so tests can name traces in parametrize
