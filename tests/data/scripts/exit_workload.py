"""A traced program for the exit tests: `python exit_workload.py MODE COUNT [STORE [ENDPOINT]]`.

It imports only what a user script would, configures from its arguments and the
environment (``SPANTREE_SPOOL_DIR``, ``SPANTREE_TEST_S3``: JSON storage options,
``SPANTREE_TEST_EXIT_TIMEOUT``) and
never calls ``flush()``.

Modes:
    exit       COUNT spans into STORE, then a plain exit.
    sigterm    COUNT finished spans, then "ready" on stderr inside an open span
               ("job"), waiting to be ended by SIGTERM.
    losses     COUNT spans with a queue of 10 that drops when full; a plain exit.
    surrogate  COUNT spans as JSON lines on stdout, one with a non-UTF-8 file name.
    http       COUNT spans to the receiver at URL (the third argument), a plain exit.
    late       a non-daemon thread records COUNT spans 3 s after the main thread ended
               (exit_timeout=2).
"""

from __future__ import annotations

import json
import os
import sys
import time

import span_tree

MODE = sys.argv[1]
COUNT = int(sys.argv[2])
STORE = sys.argv[3] if len(sys.argv) > 3 and sys.argv[3] != "-" else None
options = json.loads(os.environ.get("SPANTREE_TEST_S3", "{}")) or None
# The default (5 s) unless a test needs room for a loaded machine's slow imports.
EXIT_TIMEOUT = float(os.environ.get("SPANTREE_TEST_EXIT_TIMEOUT", "5"))

if MODE == "exit":
    span_tree.configure(
        console=False,
        jsonl=False,
        store=STORE,
        storage_options=options,
        exit_timeout=EXIT_TIMEOUT,
    )
    for index in range(COUNT):
        with span_tree.span("work", index=index):
            pass
elif MODE == "sigterm":
    span_tree.configure(console=False, jsonl=False, store=STORE, storage_options=options)
    with span_tree.span("job"):
        for index in range(COUNT):
            with span_tree.span("step", index=index):
                pass
        with span_tree.span("waiting"):
            print("ready", file=sys.stderr, flush=True)
            time.sleep(30)  # bounded: the test sends SIGTERM long before
    print("not killed", file=sys.stderr, flush=True)
elif MODE == "losses":
    span_tree.configure(console=False, jsonl=False, store=STORE, max_queue_size=10, on_full="drop")
    for index in range(COUNT):
        with span_tree.span("work", index=index):
            pass
elif MODE == "surrogate":
    span_tree.configure(console=False, jsonl=True, store=None)
    for index in range(COUNT):
        name = os.fsdecode(b"caf\xe9.txt") if index == COUNT // 2 else "plain.txt"
        with span_tree.span("open", index=index, path=name):
            pass
elif MODE == "http":
    span_tree.configure(console=False, jsonl=False, store=None, endpoint=STORE, api_key="k")
    for index in range(COUNT):
        with span_tree.span("work", index=index):
            pass
elif MODE == "late":
    import threading

    span_tree.configure(console=False, jsonl=False, store=STORE, exit_timeout=2)

    def late_work() -> None:
        time.sleep(3)
        for index in range(COUNT):
            with span_tree.span("late", index=index):
                pass

    threading.Thread(target=late_work, daemon=False).start()
    with span_tree.span("main"):
        pass
else:
    sys.exit(f"unknown mode {MODE}")
