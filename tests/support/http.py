"""HTTP on loopback for tests: a stdlib server on a daemon thread, and a running receiver."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from span_tree.receiver._subprocess import ReceiverProcess


class LoopbackServer:
    """A ``ThreadingHTTPServer`` on 127.0.0.1 (a free port) serving ``handler``.

    Serves from construction on; ``close()`` (or leaving the ``with``) stops it.
    """

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        """Stop serving and release the port."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)

    def __enter__(self) -> LoopbackServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@pytest.fixture
def store(tmp_path: Path) -> str:
    """An empty local store directory."""
    path = tmp_path / "store"
    path.mkdir()
    return str(path)


@pytest.fixture
def receiver(store: str) -> Iterator[ReceiverProcess]:
    """A running receiver (``spantree serve`` in a subprocess) on ``store``."""
    process = ReceiverProcess(store)
    process.start()
    yield process
    process.stop()
