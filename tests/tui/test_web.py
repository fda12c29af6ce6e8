"""``spantree web``: the TUI served to a real headless Chromium (the Debian package,
driven by playwright; no browser download), and the key check off loopback."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

SPANTREE = str(Path(sys.executable).parent / "spantree")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Ports of this test file (the team's machine shares ports; CI has them all).
PORTS = range(18500, 18600)
SCREENSHOTS = os.environ.get("SPANTREE_WEB_SCREENSHOTS")  # a directory to keep them in

pytestmark = pytest.mark.slow


def free_port() -> int:
    """A port of ``PORTS`` that nothing listens on right now."""
    for port in PORTS:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            if probe.connect_ex(("127.0.0.1", port)) != 0:
                return port
    raise RuntimeError(f"no free port in {PORTS.start}-{PORTS.stop - 1}")


def environment(tmp_path: Path) -> dict[str, str]:
    """The environment without span-tree settings, HOME in the temporary directory."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SPANTREE_")}
    return {**clean, "HOME": str(tmp_path / "home")}


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A store filled by `spantree demo` (its order-service names)."""
    tmp = tmp_path_factory.mktemp("web")
    store = str(tmp / "store")
    done = subprocess.run(
        [SPANTREE, "demo", "--store", store, "--traces", "12"],
        capture_output=True,
        text=True,
        env=environment(tmp),
        timeout=180,
        check=False,
    )
    assert 0 == done.returncode, done.stderr
    return store


def create_key(tmp_path: Path, *args: str) -> str:
    """A new API key made by `spantree keys create ARGS`."""
    created = subprocess.run(
        [SPANTREE, "keys", "create", *args],
        capture_output=True,
        text=True,
        env=environment(tmp_path),
        timeout=60,
        check=True,
    )
    return created.stdout.strip()


class Served:
    """A running ``spantree web`` process and its base URL."""

    def __init__(self, process: subprocess.Popen[str], url: str) -> None:
        self.process = process
        self.url = url


def start_web(store: str, tmp_path: Path, *args: str) -> Iterator[Served]:
    """Run ``spantree web`` until it answers HTTP; stop it afterwards."""
    port = free_port()
    process = subprocess.Popen(
        [SPANTREE, "web", "--store", store, "--port", str(port), "--range", "all", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment(tmp_path),
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert process.poll() is None, process.communicate()[1]
            try:
                httpx.get(url, timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        yield Served(process, url)
    finally:
        process.terminate()
        try:
            process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


@pytest.fixture
def web(demo_store: str, tmp_path: Path) -> Iterator[Served]:
    """`spantree web` on loopback over the demo store."""
    yield from start_web(demo_store, tmp_path)


def open_page(url: str, frames: list[bytes], work: Callable[[Any], None]) -> None:
    """Open ``url`` in headless Chromium, keep what the app sends in ``frames``, and run
    ``work(page)``."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 720})
            page.on(
                "websocket",
                lambda socket: socket.on(
                    "framereceived",
                    lambda data: frames.append(data if isinstance(data, bytes) else data.encode()),
                ),
            )
            page.goto(url)
            work(page)
        finally:
            browser.close()


def wait_for(frames: list[bytes], text: bytes, page: object, seconds: float = 60) -> None:
    """Wait until the app's output sent to the browser holds ``text``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if text in b"".join(frames):
            return
        page.wait_for_timeout(200)  # type: ignore[attr-defined]
    raise AssertionError(f"{text!r} never reached the browser")


@pytest.mark.skipif(CHROMIUM is None, reason="needs the Debian chromium package (.ci/run)")
def test_browser_shows_span_names_and_error_groups(web: Served, tmp_path: Path) -> None:
    """Chromium opens the page: the span names screen lists the demo's names; `g` opens the
    error groups."""
    shots = Path(SCREENSHOTS) if SCREENSHOTS else tmp_path
    frames: list[bytes] = []
    seen = 0

    def browse(page: Any) -> None:
        nonlocal seen
        for name in (b"POST /orders", b"db.query", b"nightly_report"):
            wait_for(frames, name, page)
        page.focus(".xterm-helper-textarea")  # the terminal takes the keyboard
        page.wait_for_timeout(1500)  # let the sparklines and the footer land
        page.screenshot(path=str(shots / "web-dashboard.png"))
        seen = len(frames)
        page.keyboard.press("g")
        wait_for(frames, b"error groups", page)
        wait_for(frames, b"GatewayTimeout", page)
        page.wait_for_timeout(500)
        page.screenshot(path=str(shots / "web-errors.png"))

    open_page(web.url, frames, browse)
    assert b"error groups" not in b"".join(frames[:seen])
    dashboard = (shots / "web-dashboard.png").read_bytes()
    errors = (shots / "web-errors.png").read_bytes()
    assert (b"\x89PNG", b"\x89PNG") == (dashboard[:4], errors[:4])
    assert dashboard != errors


def test_loopback_needs_no_key(web: Served) -> None:
    """On loopback the page is served without a key."""
    page = httpx.get(web.url, timeout=10)
    assert 200 == page.status_code
    assert "textual.js" in page.text


def test_other_host_without_keys_is_refused(demo_store: str, tmp_path: Path) -> None:
    """Listening beyond loopback on a store without API keys is one error, exit 1."""
    done = subprocess.run(
        [SPANTREE, "web", "--store", demo_store, "--host", "0.0.0.0", "--port", str(free_port())],
        capture_output=True,
        text=True,
        env=environment(tmp_path),
        timeout=60,
        check=False,
    )
    assert (1, "") == (done.returncode, done.stdout)
    assert done.stderr.startswith("error: serving on a non-loopback address needs an API key")


def test_other_host_requires_a_key(demo_store: str, tmp_path: Path) -> None:
    """Beyond loopback: 401 without a key or with a wrong one; ?key= opens the page and
    sets a cookie that the websocket and static files then use."""
    key = create_key(tmp_path, "--store", demo_store, "-n", "demo")
    for served in start_web(demo_store, tmp_path, "--host", "0.0.0.0"):
        assert 401 == httpx.get(served.url, timeout=10).status_code
        assert 401 == httpx.get(served.url, params={"key": "st_wrong"}, timeout=10).status_code
        with httpx.Client(timeout=10) as client:
            page = client.get(served.url, params={"key": key})
            assert 200 == page.status_code
            assert "spantree_key" in client.cookies
            static = client.get(served.url + "static/js/textual.js")
            assert 200 == static.status_code
        served.process.terminate()
        _, err = served.process.communicate(timeout=20)
        assert "?key=API_KEY" in err


@pytest.mark.skipif(CHROMIUM is None, reason="needs the Debian chromium package (.ci/run)")
def test_key_on_s3_store_shows_its_namespace_only(
    s3_endpoint: Any, s3_bucket: str, tmp_path: Path
) -> None:
    """`spantree web` on an S3 store (--storage-options reach the TUI it starts), opened
    with a key of namespace batch: batch's names show, shop's never, and a shop trace
    is not found."""
    import json

    import fixture_store

    from span_tree.storage import open_store, write_spans

    url = f"s3://{s3_bucket}/store"
    options = json.dumps(s3_endpoint.storage_options)
    write_spans(
        open_store(url, storage_options=s3_endpoint.storage_options),
        fixture_store.standard_records(),
    )
    key = create_key(tmp_path, "--store", url, "--storage-options", options, "-n", "batch")
    shop_trace = fixture_store.checkout_trace_id(2)
    frames: list[bytes] = []

    def browse(page: Any) -> None:
        wait_for(frames, b"nightly.report", page)
        page.focus(".xterm-helper-textarea")
        page.keyboard.press("t")
        wait_for(frames, b"Find trace", page)
        page.keyboard.type(shop_trace)
        page.keyboard.press("Enter")
        wait_for(frames, b"no trace with id", page)

    args = ("--host", "0.0.0.0", "--storage-options", options)
    for served in start_web(url, tmp_path, *args):
        open_page(f"{served.url}?key={key}", frames, browse)
    shown = b"".join(frames)
    assert [] == [name for name in (b"checkout", b"payment.charge") if name in shown]
