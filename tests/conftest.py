"""Shared fixtures: every test starts with tracing reset to an in-memory sink; a real
S3-compatible endpoint (moto server) on loopback; factories of finished spans."""

from __future__ import annotations

import logging
import os
import socket
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

# Failures of span_tree's own code are absorbed on the caller's thread in production;
# under our tests they raise, so that such bugs stay visible (tests of the guard unset it).
os.environ.setdefault("SPANTREE_RAISE_INTERNAL_ERRORS", "1")
# Readers remember bad files and running spans in the user's cache: not ours under test.
os.environ.setdefault("SPANTREE_CACHE_DIR", tempfile.mkdtemp(prefix="spantree-test-cache-"))

from support import spans

import span_tree
from span_tree import _runtime, _threads
from span_tree._record import FinishedSpan
from span_tree.sinks.memory import MemorySink

# The loopback receiver fixtures (`store`, `receiver`) the sink and storage tests share.
pytest_plugins = ("support.http",)


@pytest.fixture(autouse=True)
def reset_tracing() -> Iterator[MemorySink]:
    """Configure span_tree with only a memory sink; undo patches afterwards."""
    sink = MemorySink()
    span_tree.configure(sinks=[sink], console=False, jsonl=False, store=None, schedule_delay=0.05)
    yield sink
    span_tree.shutdown(timeout=5)
    _threads.unpatch_threads()
    _runtime.listeners.clear()
    _runtime.state.processor = None
    _runtime.state.enabled = True


@pytest.fixture
def memory_sink(reset_tracing: MemorySink) -> MemorySink:
    """The memory sink every test's spans go to (call span_tree.flush() first)."""
    return reset_tracing


@dataclass(frozen=True)
class S3Endpoint:
    """A running moto S3 server: its URL and the s3fs storage options that reach it."""

    url: str
    storage_options: dict[str, Any]

    def filesystem(self) -> Any:
        """A fresh (uncached) s3fs filesystem talking to this endpoint."""
        import s3fs

        return s3fs.S3FileSystem(skip_instance_cache=True, **self.storage_options)

    def new_bucket(self) -> str:
        """Create a bucket with a unique name and return it."""
        import boto3

        name = f"spantree-{uuid.uuid4().hex[:12]}"
        client = boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        client.create_bucket(Bucket=name)
        return name


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def s3_options(url: str) -> dict[str, Any]:
    """s3fs storage options for an endpoint (moto accepts any credentials)."""
    return {
        "key": "testing",
        "secret": "testing",
        "client_kwargs": {"endpoint_url": url, "region_name": "us-east-1"},
    }


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[S3Endpoint]:
    """Start moto's S3 server on 127.0.0.1 (free port) for the session; stop it after."""
    from moto.server import ThreadedMotoServer

    # One access-log line per request would bury test output.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        url = f"http://127.0.0.1:{port}"
        yield S3Endpoint(url=url, storage_options=s3_options(url))
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3_endpoint: S3Endpoint) -> str:
    """A fresh, empty bucket on the session's S3 endpoint."""
    return s3_endpoint.new_bucket()


@pytest.fixture
def unreachable_s3_options() -> dict[str, Any]:
    """Storage options for an S3 endpoint on a closed loopback port (fails fast)."""
    options = s3_options(f"http://127.0.0.1:{free_port()}")
    options["config_kwargs"] = {"connect_timeout": 1, "retries": {"max_attempts": 1}}
    return options


SpanFactory = Callable[..., list[FinishedSpan]]


@pytest.fixture
def make_spans() -> SpanFactory:
    """A factory of real span records: ``make_spans(count, namespace=...)``."""
    return spans.make_spans
