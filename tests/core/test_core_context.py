"""Context propagation: await, gather, TaskGroup, threads, executors, wrap, late children."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import span_tree
from span_tree import FinishedSpan
from span_tree.sinks.memory import MemorySink


def by_name(sink: MemorySink) -> dict[str, FinishedSpan]:
    """Flush and return the finished records by name."""
    assert span_tree.flush(5.0)
    return {record.name: record for record in sink.spans if record.status != "started"}


async def test_nesting_across_await(memory_sink: MemorySink) -> None:
    """A span opened after an await inside another span is its child."""
    with span_tree.span("outer"):
        await asyncio.sleep(0.001)
        with span_tree.span("after-await"):
            await asyncio.sleep(0.001)
    records = by_name(memory_sink)
    assert records["outer"].span_id == records["after-await"].parent_id


async def test_gather_children_share_the_parent(memory_sink: MemorySink) -> None:
    """Coroutines run by `asyncio.gather` inside a span become its children."""

    async def worker(index: int) -> int:
        with span_tree.span(f"worker-{index}"):
            await asyncio.sleep(0.001 * (3 - index))
        return index

    with span_tree.span("fan-out"):
        results = await asyncio.gather(*(worker(i) for i in range(3)))
    assert [0, 1, 2] == results
    records = by_name(memory_sink)
    parent = records["fan-out"]
    for index in range(3):
        child = records[f"worker-{index}"]
        assert (parent.trace_id, parent.span_id) == (child.trace_id, child.parent_id)
        assert child.task is not None


async def test_taskgroup_children_share_the_parent(memory_sink: MemorySink) -> None:
    """Tasks created in an `asyncio.TaskGroup` inside a span become its children."""

    @span_tree.span
    async def step(delay: float) -> None:
        await asyncio.sleep(delay)

    with span_tree.span("group"):
        async with asyncio.TaskGroup() as group:
            group.create_task(step(0.002), name="first")
            group.create_task(step(0.001), name="second")
    span_tree.flush(5.0)
    steps = [record for record in memory_sink.spans if record.name == step.__qualname__]
    parent = by_name(memory_sink)["group"]
    assert 2 == len(steps)
    assert {parent.span_id} == {record.parent_id for record in steps}
    assert {"first", "second"} == {record.task for record in steps}


async def test_concurrent_tasks_do_not_leak_spans_into_each_other(
    memory_sink: MemorySink,
) -> None:
    """Two tasks with interleaved awaits each keep their own current span."""

    async def chain(label: str) -> None:
        with span_tree.span(f"{label}-parent"):
            await asyncio.sleep(0.002)
            with span_tree.span(f"{label}-child"):
                await asyncio.sleep(0.001)

    await asyncio.gather(chain("a"), chain("b"))
    records = by_name(memory_sink)
    assert records["a-parent"].span_id == records["a-child"].parent_id
    assert records["b-parent"].span_id == records["b-child"].parent_id
    assert records["a-parent"].trace_id != records["b-parent"].trace_id


def test_thread_started_inside_a_span_is_its_child(memory_sink: MemorySink) -> None:
    """`threading.Thread` started inside a span runs its work as a child span."""
    seen: list[str | None] = []

    def work() -> None:
        current = span_tree.current_span()
        seen.append(None if current is None else current.name)
        with span_tree.span("in-thread"):
            pass

    with span_tree.span("spawner"):
        thread = threading.Thread(target=work, name="worker-thread")
        thread.start()
        thread.join()
    records = by_name(memory_sink)
    assert ["spawner"] == seen
    assert records["spawner"].span_id == records["in-thread"].parent_id
    assert "worker-thread" == records["in-thread"].thread


def test_thread_subclass_is_propagated(memory_sink: MemorySink) -> None:
    """A `Thread` subclass overriding `run` also inherits the span."""

    class Worker(threading.Thread):
        def run(self) -> None:
            with span_tree.span("subclass-run"):
                pass

    with span_tree.span("owner"):
        worker = Worker()
        worker.start()
        worker.join()
    records = by_name(memory_sink)
    assert records["owner"].span_id == records["subclass-run"].parent_id


def test_thread_started_outside_spans_has_no_parent(memory_sink: MemorySink) -> None:
    """A thread started outside any span starts its own trace."""
    thread = threading.Thread(target=span_tree.span("lonely")(lambda: None))
    thread.start()
    thread.join()
    assert by_name(memory_sink)["lonely"].parent_id is None


def test_executor_submit_is_child_of_submitter(memory_sink: MemorySink) -> None:
    """`ThreadPoolExecutor.submit` inside a span runs the callable as its child."""

    @span_tree.span("pooled")
    def pooled(value: int) -> int:
        return value + 1

    with ThreadPoolExecutor(max_workers=2) as pool:
        # Pool threads created outside the span must not keep a stale parent.
        pool.submit(lambda: None).result()
        with span_tree.span("submitter"):
            assert 2 == pool.submit(pooled, 1).result()
        assert 3 == pool.submit(pooled, 2).result()
    span_tree.flush(5.0)
    pooled_records = [r for r in memory_sink.spans if r.name == "pooled"]
    submitter = by_name(memory_sink)["submitter"]
    assert [submitter.span_id, None] == [r.parent_id for r in pooled_records]


def test_executor_map_inside_span(memory_sink: MemorySink) -> None:
    """`ThreadPoolExecutor.map` (built on submit) also propagates the span."""

    @span_tree.span("mapped")
    def mapped(value: int) -> int:
        return value * value

    with span_tree.span("mapper"), ThreadPoolExecutor(max_workers=2) as pool:
        assert [0, 1, 4] == list(pool.map(mapped, range(3)))
    span_tree.flush(5.0)
    parent = by_name(memory_sink)["mapper"]
    parents = {r.parent_id for r in memory_sink.spans if r.name == "mapped"}
    assert {parent.span_id} == parents


def test_patch_threads_false_switches_propagation_off(memory_sink: MemorySink) -> None:
    """With `configure(patch_threads=False)` threads and pools start without a parent."""
    sink = MemorySink()
    span_tree.configure(sinks=[sink], console=False, jsonl=False, store=None, patch_threads=False)
    seen: list[object] = []

    def look() -> None:
        seen.append(span_tree.current_span())

    with span_tree.span("unpatched"):
        thread = threading.Thread(target=look)
        thread.start()
        thread.join()
        with ThreadPoolExecutor(max_workers=1) as pool:
            pool.submit(look).result()
    assert [None, None] == seen


def test_wrap_binds_a_callable_to_the_current_span(memory_sink: MemorySink) -> None:
    """`span_tree.wrap(fn)` runs `fn` as a child of the span current at wrap time."""
    sink = MemorySink()
    span_tree.configure(sinks=[sink], console=False, jsonl=False, store=None, patch_threads=False)

    def task() -> str:
        with span_tree.span("wrapped-work"):
            return "ok"

    with span_tree.span("binder"):
        bound = span_tree.wrap(task)
    results: list[str] = []
    thread = threading.Thread(target=lambda: results.append(bound()))
    thread.start()
    thread.join()
    assert ["ok"] == results
    records = by_name(sink)
    assert records["binder"].span_id == records["wrapped-work"].parent_id
    assert "task" == bound.__name__


def test_root_ending_before_thread_child_loses_nothing(memory_sink: MemorySink) -> None:
    """Root ends while a thread child runs: root recorded, child `started`, then finished."""
    child_started = threading.Event()
    release = threading.Event()

    def slow_child() -> None:
        with span_tree.span("slow-child"):
            child_started.set()
            release.wait(5.0)

    with span_tree.span("short-root"):
        thread = threading.Thread(target=slow_child)
        thread.start()
        assert child_started.wait(5.0)
    span_tree.flush(5.0)
    before = [(r.name, r.status) for r in memory_sink.spans]
    assert ("short-root", "succeeded") in before
    assert ("slow-child", "started") in before
    assert ("slow-child", "succeeded") not in before
    release.set()
    thread.join()
    span_tree.flush(5.0)
    versions = [r for r in memory_sink.spans if r.name == "slow-child"]
    root = next(r for r in memory_sink.spans if r.name == "short-root")
    assert ["started", "succeeded"] == [r.status for r in versions]
    assert 1 == len({r.span_id for r in versions})
    for version in versions:
        assert (root.trace_id, root.span_id) == (version.trace_id, version.parent_id)
    assert versions[0].end_time is None
    assert versions[1].end_time is not None


async def test_root_ending_before_task_child_loses_nothing(memory_sink: MemorySink) -> None:
    """A task that outlives its root span is published `started`, then finished."""
    started = asyncio.Event()
    release = asyncio.Event()

    async def child() -> None:
        with span_tree.span("task-child"):
            started.set()
            await release.wait()

    with span_tree.span("task-root"):
        task = asyncio.create_task(child())
        await started.wait()
    release.set()
    await task
    span_tree.flush(5.0)
    statuses = [(r.name, r.status) for r in memory_sink.spans]
    assert [
        ("task-child", "started"),
        ("task-root", "succeeded"),
        ("task-child", "succeeded"),
    ] == statuses


def test_many_threads_each_record_their_span(memory_sink: MemorySink) -> None:
    """Spans from many concurrent threads are all recorded under the right parent."""
    with span_tree.span("parent"):
        threads = [
            threading.Thread(target=span_tree.span(f"t{i}")(lambda: None)) for i in range(20)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    records = by_name(memory_sink)
    assert 21 == len(records)
    parent_id = records["parent"].span_id
    assert {parent_id} == {records[f"t{i}"].parent_id for i in range(20)}
    seqs = [record.seq for record in records.values()]
    assert len(seqs) == len(set(seqs))


async def test_asyncio_to_thread_and_run_in_executor(memory_sink: MemorySink) -> None:
    """`asyncio.to_thread` and `loop.run_in_executor` work run as children of the span."""

    @span_tree.span("blocking")
    def blocking(tag: str) -> str:
        return tag

    with span_tree.span("async-parent"):
        assert "a" == await asyncio.to_thread(blocking, "a")
        loop = asyncio.get_running_loop()
        assert "b" == await loop.run_in_executor(None, blocking, "b")
    span_tree.flush(5.0)
    parent = by_name(memory_sink)["async-parent"]
    children = [r for r in memory_sink.spans if r.name == "blocking"]
    assert [parent.span_id, parent.span_id] == [r.parent_id for r in children]
    assert all(r.thread != "MainThread" for r in children)


def test_continued_trace_root_publishes_running_children(memory_sink: MemorySink) -> None:
    """A trace continued from another process: its local root ending publishes `started`."""
    trace_id = span_tree.new_trace_id()
    started, release = threading.Event(), threading.Event()

    def background() -> None:
        with span_tree.span("background"):
            started.set()
            release.wait(5.0)

    remote = ("0123456789abcdef", "fedcba9876543210")
    with span_tree.Span("request", kind="server", remote_parent=(trace_id, remote[1])):
        thread = threading.Thread(target=background)
        thread.start()
        assert started.wait(5.0)
    span_tree.flush(5.0)
    assert [("background", "started"), ("request", "succeeded")] == [
        (r.name, r.status) for r in memory_sink.spans
    ]
    release.set()
    thread.join()
    span_tree.flush(5.0)
    request = memory_sink.spans[1]
    assert (trace_id, remote[1], 1) == (request.trace_id, request.parent_id, request.seq)
    assert {request.span_id} == {r.parent_id for r in memory_sink.spans if r.name == "background"}


def test_pool_threads_created_inside_a_span_do_not_keep_it(memory_sink: MemorySink) -> None:
    """Work submitted outside spans to a pool whose threads began inside one starts a trace."""

    @span_tree.span("job")
    def job() -> None:
        pass

    with ThreadPoolExecutor(max_workers=1) as pool:
        with span_tree.span("first-request"):
            pool.submit(job).result()  # the pool's only thread starts here
        pool.submit(job).result()
    span_tree.flush(5.0)
    request = by_name(memory_sink)["first-request"]
    jobs = [r for r in memory_sink.spans if r.name == "job"]
    assert [request.span_id, None] == [r.parent_id for r in jobs]
    assert request.trace_id != jobs[1].trace_id
