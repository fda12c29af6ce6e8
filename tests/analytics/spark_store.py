"""A seeded span store for the DuckDB-vs-Spark comparison (no tests in this module).

Written through span_tree's own writer (``write_spans``) and annotation writer, with
what the views must agree on: several namespaces, apps and days; failed runs and handled
errors whose messages carry ids, numbers, paths and quotes (fingerprints); spans written
twice (started, then finished, and a stale started version written after the finished
one); spans that never finished; traces continued from another service (no parentless
span); tag combinations; annotations superseded by newer ones. Every time is distinct,
so "the newest" and "the first" never tie and both engines must pick the same row.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path

from span_tree._ids import trace_id_from_w3c
from span_tree._record import FinishedSpan, HandledError
from span_tree.storage import open_store, write_spans

BASE_US = int(datetime(2026, 3, 1, 8, 0, tzinfo=UTC).timestamp() * 1_000_000)

_MESSAGES = (
    "order {n} not found in '/srv/data/{n}.csv'",
    "user 5f3a9b2c-1d2e-4f5a-9b8c-7d6e5f4a3b2c{d} has no cart",
    "timeout after {n}.{d}s talking to 10.0.0.{d}:5432",
    'bad header "{n}" in row {d}',
    "object at 0x7f{n:x} is gone",
    "hash deadbeef{n} mismatch",
    "cannot open C:\\tmp\\run{n}\\out.txt",
)
_FILES = ("/app/shop/orders.py", "/app/shop/cache.py", "C:\\svc\\jobs\\nightly.py")


def _traceback(file: str, function: str, text: str) -> str:
    return (
        "Traceback (most recent call last):\n"
        '  File "/app/main.py", line 7, in <module>\n'
        f'  File "{file}", line 10, in {function}\n'
        f"{text}\n"
    )


def build_records(seed: int = 7, traces: int = 240) -> list[list[FinishedSpan]]:
    """The store's span batches (each becomes one file per partition when written)."""
    rng = random.Random(seed)
    clock = iter(range(BASE_US, BASE_US + 10**13, 997))  # distinct, increasing times
    batches: list[list[FinishedSpan]] = []
    late: list[FinishedSpan] = []
    early: list[FinishedSpan] = []
    current: list[FinishedSpan] = []
    for index in range(traces):
        namespace = ("shop", "ops")[index % 2]
        app = ("checkout", "reporter", "worker")[index % 3]
        root_name = ("checkout", "nightly", "sync")[rng.randrange(3)]
        day_offset = rng.randrange(3) * 86_400_000_000
        start = next(clock) + day_offset
        trace = trace_id_from_w3c(f"{rng.getrandbits(128):032x}", start // 1_000_000)
        tags = rng.choice(
            ({"env": "prod"}, {"env": "dev", "job": "a"}, {}, {"job": "a", "env": "dev"})
        )
        continued = index % 17 == 5  # no parentless span: the earliest is the root
        failed = rng.random() < 0.3
        spans: list[FinishedSpan] = []
        root_id = f"{rng.getrandbits(64):016x}"
        root_parent = f"{rng.getrandbits(64):016x}" if continued else None
        children = rng.randrange(0, 6)
        for child in range(children + 1):
            is_root = child == 0
            span_start = start if is_root else next(clock) + day_offset
            duration = rng.choice((0, 1, 5, 50, 120, 800, 5_000, rng.randrange(1, 90_000)))
            status = "failed" if (is_root and failed) or rng.random() < 0.05 else "succeeded"
            error = None
            if status == "failed":
                template = rng.choice(_MESSAGES)
                text = template.format(n=rng.randrange(1, 10**6), d=rng.randrange(10))
                file = rng.choice(_FILES)
                error = (
                    rng.choice(("ValueError", "KeyError")),
                    text,
                    _traceback(file, "load", text),
                )
            handled = ()
            if rng.random() < 0.15:
                text = rng.choice(_MESSAGES).format(n=rng.randrange(1, 10**6), d=rng.randrange(10))
                handled = (
                    HandledError(
                        next(clock) + day_offset,
                        "KeyError",
                        text,
                        _traceback(_FILES[1], "get", text),
                    ),
                )
            span = _span(
                namespace,
                trace,
                root_id if is_root else f"{rng.getrandbits(64):016x}",
                root_parent if is_root else root_id,
                root_name if is_root else f"step.{child % 3}",
                app,
                span_start,
                duration,
                status,
                tags,
                error,
                handled,
                seq=child + 1,
            )
            spans.append(span)
        if rng.random() < 0.2:  # a span still running when the root ended: written twice
            running = spans[-1]._replace(status="started", end_time=None, duration_us=None)
            early.append(running)
            if rng.random() < 0.5:
                late.append(running)  # a stale started copy written after the finished one
        if rng.random() < 0.08:  # a span whose process died: only its started snapshot
            stuck = spans[0]._replace(
                span_id=f"{rng.getrandbits(64):016x}", parent_id=spans[0].span_id,
                name="stuck", status="started", end_time=None, duration_us=None, seq=99,
                start_time=next(clock) + day_offset,
            )  # fmt: skip
            early.append(stuck)
            if rng.random() < 0.5:
                late.append(stuck._replace(attributes={"n": 100}))  # a newer snapshot
        current.extend(spans)
        if len(current) > 60 or index == traces - 1:  # started versions land first
            batches.extend(batch for batch in (early, current) if batch)
            early, current = [], []
    for start in range(0, len(late), 7):
        batches.append(late[start : start + 7])
    return batches


def _span(
    namespace: str, trace: str, span_id: str, parent: str | None, name: str, app: str,
    start: int, duration: int, status: str, tags: dict[str, str],
    error: tuple[str, str, str] | None, handled: tuple[HandledError, ...], *, seq: int,
) -> FinishedSpan:  # fmt: skip
    error_type, message, traceback = error if error else (None, None, None)
    return FinishedSpan(
        namespace=namespace,
        date=datetime.fromtimestamp(start / 1e6, tz=UTC).strftime("%Y-%m-%d"),
        trace_id=trace, span_id=span_id, parent_id=parent, seq=seq, name=name,
        kind="internal", status=status, level="ERROR" if status == "failed" else "INFO",
        start_time=start, end_time=start + duration, duration_us=duration,
        file="/app/shop/views.py", line=3, function=None if seq % 4 == 0 else name,
        app=app, app_version="1.2.0", host="web-1", pid=10, thread="MainThread", task=None,
        tags=tags, attributes={"n": seq}, error_type=error_type, error_message=message,
        error_traceback=traceback, handled_errors=handled, events=(), links=(),
        ref_src=(), ref_dest=(), written_at=None, schema_version=1,
    )  # fmt: skip


def build_store(root: Path, *, seed: int = 7, traces: int = 240) -> Path:
    """Write the store under ``root`` and annotate a few error groups; return ``root``."""
    from span_tree.analytics import Store

    location = open_store(str(root))
    for batch in build_records(seed, traces):
        write_spans(location, batch)
    with Store(str(root)) as store:
        fingerprints = [row[0] for row in store.sql(
            "select fingerprint from error_groups order by count desc, fingerprint"
        ).fetchall()]  # fmt: skip
        for number, fingerprint in enumerate(fingerprints[:4]):
            store.annotate(fingerprint, status="open", level="OK", note="first look")
            status, level = (("silenced", "OK"), ("crash", "ALERT"))[number % 2]
            store.annotate(fingerprint, status=status, level=level, note=f"decided {number}")
    return root
