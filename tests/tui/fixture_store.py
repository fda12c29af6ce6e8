"""Build small, fully deterministic span stores for the TUI tests.

Every id, time and message is fixed, so the screens render the same on every run and
the snapshots stay stable. ``NOW_US`` is the fixed clock the tests hand to the app.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from span_tree._ids import trace_id_from_w3c
from span_tree._record import Event, FinishedSpan, HandledError

NOW_US = int(datetime(2026, 1, 15, 12, 0, tzinfo=UTC).timestamp() * 1_000_000)
MINUTE_US = 60_000_000

LONG_NAME = "process_" + "very_long_segment_" * 12 + "end"
LONG_MESSAGE = "payload " + "lorem ipsum dolor sit amet " * 40


def trace_id(seed: str, start_us: int) -> str:
    """A KSUID trace id that depends only on ``seed`` and the start time."""
    payload = hashlib.sha256(seed.encode()).hexdigest()[:32]
    return trace_id_from_w3c(payload, start_us / 1_000_000)


def span_id(seed: str) -> str:
    """A 16-hex span id that depends only on ``seed``."""
    return hashlib.sha256(("span:" + seed).encode()).hexdigest()[:16]


def make_span(
    *,
    namespace: str,
    trace: str,
    span: str,
    parent: str | None,
    seq: int,
    name: str,
    start_us: int,
    duration_us: int,
    status: str = "succeeded",
    tags: dict[str, str] | None = None,
    attributes: dict[str, object] | None = None,
    error: tuple[str, str] | None = None,
    handled: Sequence[HandledError] = (),
    events: Sequence[Event] = (),
    file: str = "shop/checkout.py",
    line: int = 42,
) -> FinishedSpan:
    """One finished span record with the given fields and fixed defaults for the rest."""
    error_type, error_message = error if error else (None, None)
    return FinishedSpan(
        namespace=namespace,
        date=datetime.fromtimestamp(start_us / 1e6, tz=UTC).strftime("%Y-%m-%d"),
        trace_id=trace,
        span_id=span,
        parent_id=parent,
        seq=seq,
        name=name,
        kind="internal",
        status=status,
        level="ERROR" if status == "failed" else "INFO",
        start_time=start_us,
        end_time=start_us + duration_us,
        duration_us=duration_us,
        file=file,
        line=line,
        function=name.rsplit(".", 1)[-1],
        app="shop",
        app_version="1.4.2",
        host="web-1",
        pid=4242,
        thread="MainThread",
        task=None,
        tags=tags or {"env": "prod"},
        attributes=attributes or {},
        error_type=error_type,
        error_message=error_message,
        error_traceback=(
            None
            if error is None
            else (
                "Traceback (most recent call last):\n"
                '  File "shop/payment.py", line 88, in charge\n'
                "    gateway.charge(card, amount)\n"
                f"{error_type}: {error_message}"
            )
        ),
        handled_errors=tuple(handled),
        events=tuple(events),
        links=(),
        ref_src=(),
        ref_dest=(),
        written_at=start_us + duration_us + 1_000,
        schema_version=1,
    )


def _event(time_us: int, seq: int, level: str, message: str) -> Event:
    return Event(
        time=time_us,
        seq=seq,
        level=level,
        logger="shop.checkout",
        message=message,
        file="shop/checkout.py",
        line=50 + seq,
        attributes={},
    )


def checkout_trace(
    index: int, *, namespace: str = "shop", fail: bool = False
) -> list[FinishedSpan]:
    """A checkout request: root with auth, two queries and a payment child."""
    start = NOW_US - (58 - index * 5) * MINUTE_US
    trace = trace_id(f"{namespace}:checkout:{index}", start)
    root = span_id(f"{trace}:root")
    env = "prod" if index % 3 else "staging"
    tags = {"env": env, "region": "eu"}
    pay_status = "failed" if fail else "succeeded"
    pay_error = ("PaymentDeclined", f"card declined for order {1000 + index}") if fail else None
    spans = [
        make_span(
            namespace=namespace,
            trace=trace,
            span=root,
            parent=None,
            seq=0,
            name="checkout",
            start_us=start,
            duration_us=120_000 + index * 1_000,
            status=pay_status,
            tags=tags,
            attributes={"order_id": 1000 + index},
            error=pay_error,
            events=[
                _event(start + 100, 1, "DEBUG", "cart loaded"),
                _event(start + 200, 2, "INFO", f"checkout started for order {1000 + index}"),
                _event(start + 110_000, 9, "WARNING", "payment slower than usual"),
            ],
        ),
        make_span(
            namespace=namespace,
            trace=trace,
            span=span_id(f"{trace}:auth"),
            parent=root,
            seq=3,
            name="auth.verify",
            start_us=start + 1_000,
            duration_us=8_000,
            tags=tags,
            file="shop/auth.py",
            line=12,
        ),
        make_span(
            namespace=namespace,
            trace=trace,
            span=span_id(f"{trace}:q1"),
            parent=root,
            seq=4,
            name="db.query",
            start_us=start + 10_000,
            duration_us=15_000 + index * 100,
            tags=tags,
            attributes={"table": "carts"},
            file="shop/db.py",
            line=30,
        ),
        make_span(
            namespace=namespace,
            trace=trace,
            span=span_id(f"{trace}:q2"),
            parent=root,
            seq=5,
            name="db.query",
            start_us=start + 26_000,
            duration_us=9_000,
            tags=tags,
            attributes={"table": "prices"},
            file="shop/db.py",
            line=30,
            handled=[
                HandledError(
                    time=start + 30_000,
                    type="TimeoutError",
                    message="replica timed out, retried on primary",
                    traceback="Traceback (most recent call last):\nTimeoutError: replica",
                )
            ],
        ),
        make_span(
            namespace=namespace,
            trace=trace,
            span=span_id(f"{trace}:pay"),
            parent=root,
            seq=6,
            name="payment.charge",
            start_us=start + 40_000,
            duration_us=70_000,
            status=pay_status,
            tags=tags,
            error=pay_error,
            file="shop/payment.py",
            line=80,
            events=[
                _event(start + 41_000, 7, "INFO", "charging card"),
                _event(start + 109_000, 8, "ERROR" if fail else "INFO", "gateway answered"),
            ],
        ),
    ]
    return spans


def report_trace(namespace: str = "batch") -> list[FinishedSpan]:
    """A nightly batch job whose names and messages are very long."""
    start = NOW_US - 30 * MINUTE_US
    trace = trace_id(f"{namespace}:report", start)
    root = span_id(f"{trace}:root")
    return [
        make_span(
            namespace=namespace,
            trace=trace,
            span=root,
            parent=None,
            seq=0,
            name="nightly.report",
            start_us=start,
            duration_us=4_500_000,
            tags={"env": "prod", "job": "report"},
            file="batch/report.py",
            line=7,
            events=[_event(start + 10, 1, "INFO", LONG_MESSAGE)],
        ),
        make_span(
            namespace=namespace,
            trace=trace,
            span=span_id(f"{trace}:long"),
            parent=root,
            seq=2,
            name=LONG_NAME,
            start_us=start + 1_000,
            duration_us=4_000_000,
            tags={"env": "prod", "job": "report"},
            file="batch/report.py",
            line=19,
        ),
    ]


def huge_trace(spans: int = 10_000, namespace: str = "huge") -> list[FinishedSpan]:
    """One trace of ``spans`` spans: a root, 100 stages, the rest spread under them."""
    start = NOW_US - 10 * MINUTE_US
    trace = trace_id(f"{namespace}:huge", start)
    root = span_id(f"{trace}:root")
    records = [
        make_span(
            namespace=namespace,
            trace=trace,
            span=root,
            parent=None,
            seq=0,
            name="bulk.import",
            start_us=start,
            duration_us=spans * 100 + 10_000,
            tags={"env": "prod"},
        )
    ]
    stages = min(100, spans - 1)
    for stage in range(stages):
        records.append(
            make_span(
                namespace=namespace,
                trace=trace,
                span=span_id(f"{trace}:s{stage}"),
                parent=root,
                seq=len(records),
                name=f"stage.{stage:03d}",
                start_us=start + stage * 100,
                duration_us=5_000,
                tags={"env": "prod"},
            )
        )
    for index in range(spans - 1 - stages):
        stage = index % stages
        records.append(
            make_span(
                namespace=namespace,
                trace=trace,
                span=span_id(f"{trace}:r{index}"),
                parent=span_id(f"{trace}:s{stage}"),
                seq=len(records),
                name="row.insert",
                start_us=start + index * 100,
                duration_us=90 + index % 50,
                tags={"env": "prod"},
            )
        )
    return records


def standard_records() -> list[FinishedSpan]:
    """The fixture store's content: 12 checkouts (3 failed) in ``shop``, one report in ``batch``."""
    records: list[FinishedSpan] = []
    for index in range(12):
        records += checkout_trace(index, fail=index in (2, 7, 11))
    records += report_trace()
    return records


def write_store(root: Path, records: Sequence[FinishedSpan]) -> Path:
    """Write ``records`` into the store at ``root`` with the store's own writer.

    Returns:
        ``root``, for chaining.
    """
    from span_tree.storage import open_store, write_spans

    root.mkdir(parents=True, exist_ok=True)
    write_spans(open_store(str(root)), records)
    return root


def checkout_trace_id(index: int, namespace: str = "shop") -> str:
    """The trace id of ``checkout_trace(index)``."""
    start = NOW_US - (58 - index * 5) * MINUTE_US
    return trace_id(f"{namespace}:checkout:{index}", start)
