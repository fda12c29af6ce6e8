"""Running user-like programs in subprocesses: a clean environment, reading a pty."""

from __future__ import annotations

import os
import select
import subprocess

TIMEOUT = 30


def clean_env(**extra: str) -> dict[str, str]:
    """The environment of a normal program: no pytest marker, no SPANTREE_* settings."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("SPANTREE_") and key != "PYTEST_CURRENT_TEST"
    }
    env.update(extra)
    return env


def read_pty(fd: int, process: subprocess.Popen[bytes]) -> str:
    """Read everything a child writes to a pty until it exits."""
    chunks = []
    while True:
        ready, _, _ = select.select([fd], [], [], TIMEOUT)
        if not ready:
            break
        try:
            data = os.read(fd, 65536)
        except OSError:  # EIO: the child closed its end
            break
        if not data:
            break
        chunks.append(data)
    process.wait(timeout=TIMEOUT)
    return b"".join(chunks).decode("utf-8", "replace")
