"""A traced program for the core subprocess tests: `python core_workload.py MODE [N]`.

Modes:
    exit         N spans, then a normal exit (the atexit hook must flush them).
    sigterm      N spans, "ready" on stderr, then wait to be killed by SIGTERM.
    hang-exit    a sink that hangs forever; normal exit must still end (exit_timeout=1).
    hang-sigterm the same, ended by SIGTERM.
    fork         parent and forked child each record their own spans.
    defaults     no configure(): whatever the environment chooses.
    logging      a WARNING outside any span (must reach stderr via lastResort).
    shutdown     span_tree.shutdown() by hand, then a normal exit.
    basicconfig  configure(), then logging.basicConfig(): the app's handler still works.
    sigterm-app  the app's own SIGTERM handler (exit 0) runs after span_tree's flush.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Sequence

import span_tree
from span_tree import FinishedSpan

MODE = sys.argv[1]
COUNT = int(sys.argv[2]) if len(sys.argv) > 2 else 3


class HangingSink:
    """A sink whose export never returns."""

    def export(self, batch: Sequence[FinishedSpan]) -> None:
        threading.Event().wait()

    def force_flush(self, timeout: float) -> bool:
        threading.Event().wait()
        return True

    def shutdown(self) -> None:
        threading.Event().wait()


def record(count: int, prefix: str = "work") -> None:
    """Open `count` root spans, each with one child and one log event."""
    log = span_tree.get_logger("workload")
    for index in range(count):
        with span_tree.span(f"{prefix}-{index}", index=index):
            log.warning("step %d", index)
            with span_tree.span(f"{prefix}-{index}-child"):
                pass


def wait_for_sigterm() -> None:
    print("ready", file=sys.stderr, flush=True)
    time.sleep(30)  # bounded: the test sends SIGTERM long before
    print("not killed", file=sys.stderr, flush=True)


if MODE in ("exit", "sigterm", "shutdown"):
    # A long schedule delay: only the exit hooks can get these spans out in time.
    span_tree.configure(console=False, jsonl=True, store=None, schedule_delay=60)
    record(COUNT)
    if MODE == "sigterm":
        wait_for_sigterm()
    if MODE == "shutdown":
        span_tree.shutdown()
elif MODE == "sigterm-app":
    import signal

    def graceful(signum: int, frame: object) -> None:
        print("app handler", file=sys.stderr, flush=True)
        sys.exit(0)

    signal.signal(signal.SIGTERM, graceful)
    span_tree.configure(console=False, jsonl=True, store=None, schedule_delay=60)
    record(COUNT)
    wait_for_sigterm()
elif MODE in ("hang-exit", "hang-sigterm"):
    from span_tree.sinks.jsonl import JsonlSink

    span_tree.configure(
        console=False,
        jsonl=False,
        store=None,
        sinks=[JsonlSink(), HangingSink()],
        schedule_delay=60,
        exit_timeout=1.0,
    )
    record(COUNT)
    if MODE == "hang-sigterm":
        wait_for_sigterm()
elif MODE == "fork":
    span_tree.configure(console=False, jsonl=True, store=None, schedule_delay=0.05)
    record(1, "parent-before")
    span_tree.flush(5)
    with span_tree.span("parent-forking"):
        pid = os.fork()
        if pid == 0:
            record(2, "child")
            ok = span_tree.flush(5)
            sys.stdout.flush()
            os._exit(0 if ok else 3)
        _, status = os.waitpid(pid, 0)
    record(1, "parent-after")
    span_tree.flush(5)
    sys.exit(os.waitstatus_to_exitcode(status))
elif MODE == "defaults":
    record(COUNT)
elif MODE == "logging":
    span_tree.configure(console=False, jsonl=True, store=None)
    logging.getLogger("outside").warning("warning outside spans")
    logging.getLogger("outside").info("info outside spans")
    record(1)
    with span_tree.span("bad-format"):
        logging.getLogger("fmt").info("info inside a span")  # kept: root lowered to INFO
        logging.getLogger("fmt").error("%d items", "many")  # reported like stdlib does
elif MODE == "basicconfig":
    span_tree.configure(console=False, jsonl=True, store=None)
    logging.basicConfig(level=logging.INFO, format="APP %(levelname)s %(message)s")
    logging.getLogger("outside").info("info outside spans")
    record(1)
else:
    sys.exit(f"unknown mode {MODE}")
