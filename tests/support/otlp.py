"""Shared by the OpenTelemetry integration tests: a receiver child process and the CLI."""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from span_tree.receiver import key_store
from span_tree.receiver._subprocess import ReceiverProcess

SPANTREE = str(Path(sys.executable).parent / "spantree")
# The port range these tests may listen on (other suites use other ranges).
PORTS = range(18500, 18600)


def port_in_range() -> int:
    """A free loopback port of ``PORTS``, tried in random order (test runs of several
    people on one machine share the range: the lowest free port would collide)."""
    for port in random.sample(PORTS, len(PORTS)):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 18500-18599")


class OtlpReceiver:
    """A ``spantree serve`` child with a key for namespace "team"."""

    def __init__(self, store: str, *, args: Sequence[str] = ()) -> None:
        self.store = store
        self.key = key_store(store).create("team")
        log = os.environ.get("SPANTREE_TEST_RECEIVER_LOG")  # to debug the child
        self.process = ReceiverProcess(
            store, port=port_in_range(), args=["--key-refresh", "0.2", *args], log_path=log
        )
        self.url = self.process.url

    def __enter__(self) -> OtlpReceiver:
        self.process.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.stop()


def spantree(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the ``spantree`` command in a fresh process (bounded by a timeout)."""
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("PYTEST_CURRENT_TEST", None)
    return subprocess.run(
        [SPANTREE, *args], capture_output=True, text=True, timeout=120, env=env, check=False
    )


def sql_rows(store: str, query: str) -> list[dict[str, Any]]:
    """Rows of ``spantree sql QUERY --format json`` over ``store``."""
    result = spantree("sql", query, "--store", store, "--format", "json")
    assert 0 == result.returncode, result.stderr
    rows: list[dict[str, Any]] = json.loads(result.stdout)
    return rows
