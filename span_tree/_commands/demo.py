"""The ``spantree demo`` workload: an instrumented order service writing into a store.

Written with the public API only, the way an application would use span-tree:
``configure`` once per deploy, ``@span`` on functions, ``with span(...)`` around
blocks, ``logging`` inside spans, a thread pool and an asyncio fan-out that inherit the
current span, database calls with skewed latency, retries with handled errors, and a few
recurring failures. Latencies are real but tiny sleeps, so the whole demo takes seconds.
"""

from __future__ import annotations

import asyncio
import logging
import random
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import span_tree

if TYPE_CHECKING:
    from rich.console import Console

APP = "order-service"
DEFAULT_NAMESPACE = "demo"
DEFAULT_TRACES = 120
# Three deploys of the service, each a run with its own tags.
RELEASES = ("1.4.0", "1.4.1", "1.5.0")
NIGHTLY_RUNS = 4

log = logging.getLogger("orders")
db_log = logging.getLogger("orders.db")


class OrderNotFound(LookupError):
    """The order id is unknown."""


class PaymentDeclined(RuntimeError):
    """The payment gateway refused the charge."""


class GatewayTimeout(TimeoutError):
    """The payment gateway did not answer in time (retried)."""


@dataclass
class DemoResult:
    """What the demo wrote: traces started, failed and the store it wrote to."""

    store: str
    namespace: str
    traces: int
    failed: int
    seconds: float


class OrderService:
    """A toy order service whose every step is a span."""

    def __init__(self, rng: random.Random, pool: ThreadPoolExecutor, *, slow_release: bool) -> None:
        self.rng = rng
        self.pool = pool
        # One release ships a slow query: the slow_spans view shows it.
        self.slow_release = slow_release

    def _pause(self, median_ms: float, *, tail: float = 0.05) -> None:
        """Sleep a skewed (log-normal) time; a few calls take ten times longer."""
        ms = self.rng.lognormvariate(0, 0.6) * median_ms
        if self.rng.random() < tail:
            ms *= 10
        time.sleep(min(ms, 60.0) / 1000)

    def db_query(self, table: str, key: int) -> dict[str, int]:
        with span_tree.span("db.query", table=table, key=key):
            median = 2.0 if (self.slow_release and table == "orders") else 0.4
            self._pause(median)
            db_log.debug("SELECT * FROM %s WHERE id = %s", table, key)
            return {"id": key, "quantity": self.rng.randint(1, 5)}

    @span_tree.span("cache.get")
    def cache_get(self, key: str) -> str | None:
        self._pause(0.05, tail=0.0)
        try:
            if self.rng.random() < 0.3:
                raise KeyError(key)
        except KeyError:
            log.exception("cache miss for key %s", key)  # handled: stored, span succeeds
            return None
        return "hit"

    @span_tree.span
    def validate(self, sku: str, quantity: int) -> None:
        if quantity <= 0:
            raise ValueError(f"invalid quantity {quantity} for sku '{sku}'")
        log.info("validated %s x%d", sku, quantity)

    @span_tree.span
    def charge_payment(self, order_id: int, amount: float) -> str:
        for attempt in range(1, 4):
            with span_tree.span("payment.attempt", attempt=attempt):
                self._pause(1.0)
                try:
                    if self.rng.random() < 0.25:
                        raise GatewayTimeout(f"gateway timed out after {attempt * 1.5:.1f}s")
                except GatewayTimeout:
                    log.exception("payment attempt %d for order %d failed", attempt, order_id)
                    continue
                if self.rng.random() < 0.04:
                    raise PaymentDeclined(f"card declined for order {order_id} (amount {amount})")
                return f"ch_{self.rng.getrandbits(48):012x}"
        raise GatewayTimeout(f"payment for order {order_id} failed after 3 attempts")

    @span_tree.span
    def notify(self, channel: str, order_id: int) -> None:
        self._pause(0.3)
        log.info("sent %s notification for order %d", channel, order_id)

    def create_order(self, order_id: int) -> None:
        with span_tree.span("POST /orders", kind="server", order_id=order_id):
            sku = f"SKU-{self.rng.randint(1000, 9999)}"
            quantity = self.rng.choice([1, 1, 2, 3, 5, -1]) if self.rng.random() < 0.2 else 1
            self.validate(sku, quantity)
            self.db_query("stock", self.rng.randint(1, 500))
            self.charge_payment(order_id, round(self.rng.uniform(5, 400), 2))
            self.db_query("orders", order_id)
            # Notifications go through a thread pool; each becomes a child span.
            futures = [
                self.pool.submit(self.notify, channel, order_id)
                for channel in ("email", "warehouse", "analytics")
            ]
            for future in futures:
                future.result()

    def get_order(self, order_id: int) -> None:
        with span_tree.span("GET /orders/{id}", kind="server", order_id=order_id):
            if self.cache_get(f"order:{order_id}") is None:
                self.db_query("orders", order_id)
            if self.rng.random() < 0.08:
                raise OrderNotFound(f"order {order_id} not found")

    def recommendations(self, order_id: int) -> None:
        with span_tree.span("GET /orders/{id}/recommendations", kind="server"):
            asyncio.run(self._fan_out(order_id))

    async def _fan_out(self, order_id: int) -> None:
        await asyncio.gather(
            *(self._fetch(service, order_id) for service in ("catalog", "pricing", "reviews"))
        )

    async def _fetch(self, service: str, order_id: int) -> None:
        with span_tree.span(f"rpc.{service}", order_id=order_id):
            await asyncio.sleep(self.rng.lognormvariate(0, 0.5) * 0.001)
            if service == "reviews" and self.rng.random() < 0.05:
                raise ConnectionError(f"reviews service at 10.0.0.{self.rng.randint(2, 9)} refused")


@span_tree.span("nightly_report")
def nightly_report(rng: random.Random, *, fail: bool) -> None:
    """A batch job run once per deploy; its run sequence goes green, then red."""
    for day in range(3):
        with span_tree.span("report.aggregate", day=day):
            time.sleep(rng.uniform(0.001, 0.003))
    if fail:
        raise FileNotFoundError("missing export /data/exports/2024-06-01/orders.csv")
    log.info("report written")


def _handle(service: OrderService, rng: random.Random, order_id: int) -> bool:
    """Serve one request; return whether it failed. Failures never stop the demo."""
    handler = rng.choices(
        (service.create_order, service.get_order, service.recommendations), weights=(5, 4, 2)
    )[0]
    try:
        handler(order_id)
    except Exception:
        return True
    return False


def demo_trace_count(traces: int) -> int:
    """How many traces ``run_demo(traces=...)`` writes: the requests plus the batch runs."""
    return traces + len(RELEASES) - 1 + NIGHTLY_RUNS


def run_demo(
    *,
    store: str,
    traces: int = DEFAULT_TRACES,
    namespace: str = DEFAULT_NAMESPACE,
    seed: int = 7,
    on_trace: Callable[[], None] | None = None,
) -> DemoResult:
    """Run the order service against ``store`` and flush every span.

    Args:
        store: store path or fsspec URL to write to.
        traces: number of requests to serve (spread over the releases), plus one
            nightly batch run per release.
        namespace: store namespace of the spans.
        seed: random seed (the workload is reproducible apart from timings and ids).
        on_trace: called after each trace (progress display; ``demo_trace_count``
            calls in all).

    Returns:
        A summary of what was written.
    """
    rng = random.Random(seed)
    started = time.perf_counter()
    failed = 0
    done = 0
    per_release = [traces // len(RELEASES)] * len(RELEASES)
    per_release[-1] += traces - sum(per_release)
    with ThreadPoolExecutor(max_workers=4, thread_name_prefix="notify") as pool:
        for index, (release, count) in enumerate(zip(RELEASES, per_release, strict=True)):
            span_tree.configure(
                store=store,
                console=False,
                jsonl=False,
                namespace=namespace,
                app=APP,
                app_version=release,
                tags={"env": "staging", "release": release},
                schedule_delay=0.2,
            )
            service = OrderService(rng, pool, slow_release=release == "1.4.1")
            for _ in range(count):
                failed += _handle(service, rng, rng.randint(1000, 99999))
                done += 1
                if on_trace is not None:
                    on_trace()
            for run in range(NIGHTLY_RUNS if index == len(RELEASES) - 1 else 1):
                try:
                    nightly_report(rng, fail=index == len(RELEASES) - 1 and run >= 2)
                except FileNotFoundError:
                    failed += 1
                done += 1
                if on_trace is not None:
                    on_trace()
            span_tree.flush(timeout=30)
    return DemoResult(store, namespace, done, failed, time.perf_counter() - started)


def run_and_report(*, store: str | None, traces: int, namespace: str) -> DemoResult:
    """``spantree demo``: run the workload with a progress bar, then show the results.

    Prints the dashboard, the slowest spans and the error groups, then the commands to
    try next. Imports rich and the analytics layer.

    Raises:
        StoreError: the store cannot be opened, written or read back.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from span_tree._config import default_store
    from span_tree.analytics import StoreError
    from span_tree.storage import open_store

    target = store or default_store()
    try:
        open_store(target)  # a bad URL fails here, not after the whole workload
    except ValueError as error:
        raise StoreError(str(error)) from None
    console = Console(file=sys.stdout, soft_wrap=False, width=None if sys.stdout.isatty() else 120)
    with Progress(
        TextColumn("[bold]order-service[/] serving requests"),
        BarColumn(),
        MofNCompleteColumn(),
        console=Console(file=sys.stderr),
        transient=True,
    ) as progress:
        task = progress.add_task("demo", total=demo_trace_count(traces))
        result = run_demo(
            store=target,
            traces=traces,
            namespace=namespace,
            on_trace=lambda: progress.advance(task),
        )
    problem = _write_problem()
    if problem is not None:
        raise StoreError(f"the demo's spans were not written to {target}: {problem}")
    console.print(
        f"[bold green]✓[/] wrote {result.traces} traces ({result.failed} failed) of"
        f" [bold]{APP}[/] to [bold]{target}[/] (namespace {namespace})"
        f" in {result.seconds:.1f}s\n"
    )
    _print_report(console, target, namespace)
    return result


def _write_problem() -> str | None:
    """Why the spans of the last flush did not all reach the store, or ``None``."""
    sinks = [entry for entry in span_tree.stats()["sinks"] if entry["name"] == "ParquetSink"]
    if not sinks:
        return "the store sink could not start"
    entry = sinks[0]
    if entry.get("spooled_spans") or entry.get("lost_spans") or entry.get("buffered_spans"):
        return str(entry.get("last_store_error") or "the store did not take every span")
    return None


def _print_report(console: Console, store: str, namespace: str) -> None:
    from span_tree._display import format_duration, short_error_type
    from span_tree.analytics import Store
    from span_tree.analytics._formats import write_result

    def duration(value: Any) -> str:
        return "" if value is None else format_duration(int(value))

    def clock(value: Any) -> str:
        return "" if value is None else value.strftime("%H:%M:%S")

    analysis = Store(store, namespace=namespace)
    sections = (
        (
            "dashboard",
            analysis.dashboard(),
            ["name", "status", "runs", "succeeded", "failed", "last_time", "p50_us", "p99_us"],
        ),
        (
            "slowest spans (over their name's p95)",
            analysis.slow(limit=5),
            ["name", "duration_us", "p95_us", "trace_id"],
        ),
        (
            "error groups",
            analysis.errors(limit=8),
            ["fingerprint", "trace_count", "handled", "error_type", "pattern"],
        ),
    )
    formatters = {
        "p50_us": duration,
        "p99_us": duration,
        "duration_us": duration,
        "p95_us": duration,
        "last_time": clock,
        "handled": lambda value: "handled" if value else "fatal",
        "error_type": short_error_type,
    }
    headers = {
        "last_time": "last run",
        "p50_us": "p50",
        "p99_us": "p99",
        "duration_us": "duration",
        "p95_us": "p95",
        "trace_count": "traces",
        "error_type": "type",
        "handled": "handled",
        "pattern": "message (normalised)",
        "succeeded": "ok",
    }
    for title, frame, columns in sections:
        write_result(
            frame.select(columns).to_arrow(),
            fmt="table",
            title=title,
            formatters=formatters,
            headers=headers,
        )
        console.print()
    errors = analysis.errors(handled=False, limit=1)
    fingerprint = errors["fingerprint"][0] if errors.height else "FINGERPRINT"
    trace_id = analysis.dashboard()["last_trace_id"][0]
    store_flag = "" if store == _default_store() else f" --store {store}"
    console.print("[bold]Next, try:[/]")
    for command in (
        f"spantree trace {trace_id[:12]}{store_flag}",
        f"spantree traces --status failed{store_flag}",
        f"spantree errors --fatal{store_flag}",
        f'spantree sql "select name, count, p50_us, p99_us from span_stats'
        f' order by p99_us desc limit 10"{store_flag}',
        f"spantree annotate {fingerprint} --status crash --level ALERT"
        f' --note "ticket ORD-1"{store_flag}',
        f"spantree health{store_flag}",
    ):
        console.print(f"  [cyan]{command}[/]", soft_wrap=True)


def _default_store() -> str:
    from span_tree._config import default_store

    return default_store()
