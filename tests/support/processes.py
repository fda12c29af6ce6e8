"""Running user-like programs in subprocesses: a clean environment, reading a pty,
SIGTERM once ready; loopback destinations that are down or hang."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator

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


def run_python(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``script`` with ``args`` in a fresh interpreter, as a user's program: its
    output as text, within ``TIMEOUT``."""
    return subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=clean_env(),
    )


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


def terminate_when_ready(
    args: list[str],
    env: dict[str, str],
    *,
    when_ready: Callable[[], object] | None = None,
    timeout: float = TIMEOUT,
) -> tuple[int, str, str]:
    """Start ``args``, wait for its "ready" line on stderr, then SIGTERM it.

    ``when_ready`` runs between the two (a request to the app, say); ``timeout`` bounds
    the wait for the exit.

    Returns:
        The exit code, stdout and the rest of stderr.
    """
    process = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        assert process.stderr is not None
        assert "ready" == process.stderr.readline().strip()
        if when_ready is not None:
            when_ready()
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return process.returncode, stdout, stderr


def closed_port_url() -> str:
    """The URL of a loopback port nothing listens on (a destination that is down)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


@contextlib.contextmanager
def hanging_endpoint() -> Iterator[str]:
    """The URL of a loopback port that accepts connections and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)  # connections complete in the backlog; nothing ever replies
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
