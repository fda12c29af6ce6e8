"""Run a receiver in a child process on a free loopback port (tests, benchmarks, demos)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence

import httpx


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ReceiverProcess:
    """A ``spantree serve`` child process; ``url`` is its base URL.

    Args:
        store: the store the receiver writes to.
        port: the port to listen on (default: a free one).
        args: extra ``spantree serve`` options (``["--max-body", "1024"]``).
        log_path: where the child's stdout/stderr go (default: discarded).
    """

    def __init__(
        self,
        store: str,
        *,
        port: int | None = None,
        args: Sequence[str] = (),
        log_path: str | None = None,
    ) -> None:
        self.store = store
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._args = list(args)
        self._log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, *, timeout: float = 20.0) -> None:
        """Start the child and wait until ``/v1/health`` answers.

        Raises:
            RuntimeError: the child exited or did not answer within ``timeout``.
        """
        command = [
            sys.executable,
            "-c",
            "from span_tree.cli import main; main()",
            "serve",
            "--store",
            self.store,
            "--port",
            str(self.port),
            *self._args,
        ]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("PYTEST_CURRENT_TEST", None)
        if self._log_path:
            with open(self._log_path, "ab") as log:
                self._process = subprocess.Popen(command, stdout=log, stderr=log, env=env)
        else:
            self._process = subprocess.Popen(
                command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"receiver exited with {self._process.returncode}")
            try:
                if httpx.get(self.url + "/v1/health", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"receiver did not answer on {self.url} within {timeout} s")

    @property
    def pid(self) -> int:
        """The child's process id.

        Raises:
            RuntimeError: the receiver is not running.
        """
        if self._process is None:
            raise RuntimeError("the receiver is not running")
        return self._process.pid

    def stop(self, *, timeout: float = 15.0) -> None:
        """Stop the child (SIGTERM: in-flight requests finish; SIGKILL after ``timeout``)."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
