"""The receiver over real HTTP: a `spantree serve` child process on a loopback port."""

from __future__ import annotations

import glob
import gzip
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from span_tree import new_trace_id
from span_tree.receiver import key_store
from span_tree.receiver._subprocess import ReceiverProcess
from span_tree.storage.schema import table_to_records

pytestmark = pytest.mark.slow

MAX_BODY = 256 * 1024


class Receiver:
    """A running receiver, its store and a key for namespace "team"."""

    def __init__(self, process: ReceiverProcess, store: str, key: str, other_key: str) -> None:
        self.process = process
        self.url = process.url
        self.store = store
        self.key = key
        self.other_key = other_key

    def post(self, payload: Any, *, key: str | None = None, **kwargs: Any) -> httpx.Response:
        """POST a JSON-able payload (or raw bytes) to /v1/spans."""
        content = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        headers = {"X-API-Key": self.key if key is None else key, **kwargs.pop("headers", {})}
        return httpx.post(
            self.url + "/v1/spans", content=content, headers=headers, timeout=30, **kwargs
        )

    def files(self) -> list[str]:
        """Every span file in the store."""
        return sorted(glob.glob(f"{self.store}/spans/**/*.parquet", recursive=True))

    def records(self) -> list[Any]:
        """Every span row in the store."""
        rows = []
        for path in self.files():
            rows.extend(table_to_records(pq.read_table(path)))
        return rows


@pytest.fixture(scope="module")
def receiver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Receiver]:
    """One receiver for the module, with a small body limit and fast key refresh."""
    store = str(tmp_path_factory.mktemp("store"))
    keys = key_store(store)
    key, other_key = keys.create("team"), keys.create("other")
    log = os.environ.get("SPANTREE_TEST_RECEIVER_LOG")  # to debug the child
    process = ReceiverProcess(
        store,
        args=["--max-body", str(MAX_BODY), "--max-spans", "500", "--key-refresh", "0.2"],
        log_path=log,
    )
    process.start()
    try:
        yield Receiver(process, store, key, other_key)
    finally:
        process.stop()


_counter = iter(range(10**9))


def make_span(**overrides: Any) -> dict[str, Any]:
    """A valid span record with a fresh span id."""
    record: dict[str, Any] = {
        "trace_id": "2ZbWQnIc5sDs9mMCq8kP4nBvYzA",
        "span_id": f"{next(_counter):016x}",
        "name": "work",
        "status": "succeeded",
        "start_time": "2026-01-02T03:04:05Z",
        "end_time": "2026-01-02T03:04:06Z",
    }
    record.update(overrides)
    return record


def test_health_needs_no_key(receiver: Receiver) -> None:
    """GET /v1/health answers without a key."""
    assert 200 == httpx.get(receiver.url + "/v1/health").status_code


def test_accepted_spans_are_in_the_store_under_the_key_namespace(receiver: Receiver) -> None:
    """202 means the spans are on disk, under the key's namespace whatever the body says."""
    spans = [make_span(namespace="other"), make_span()]
    response = receiver.post({"tags": {"env": "prod"}, "spans": spans})
    stored = {r.span_id: r for r in receiver.records()}
    assert (202, {"accepted": 2}) == (response.status_code, response.json())
    assert [("team", "prod")] * 2 == [
        (stored[s["span_id"]].namespace, stored[s["span_id"]].tags["env"]) for s in spans
    ]


@pytest.mark.parametrize("key", [None, "", "st_000000000000_wrong", "garbage"])
def test_wrong_or_missing_key_is_401(receiver: Receiver, key: str | None) -> None:
    """Without a valid key nothing is written and the answer is 401."""
    before = receiver.files()
    headers = {} if key is None else {"X-API-Key": key}
    response = httpx.post(
        receiver.url + "/v1/spans", json={"spans": [make_span()]}, headers=headers
    )
    assert (401, before) == (response.status_code, receiver.files())


def test_invalid_span_is_422_and_nothing_is_written(receiver: Receiver) -> None:
    """One bad span refuses the whole request (all or nothing), naming index and field."""
    before = receiver.files()
    spans = [make_span(), make_span(), make_span(start_time="yesterday"), make_span()]
    response = receiver.post({"spans": spans})
    assert (422, 2, "start_time", before) == (
        response.status_code,
        response.json()["index"],
        response.json()["field"],
        receiver.files(),
    )


def test_malformed_json_is_422(receiver: Receiver) -> None:
    """A body that is not JSON is a 422 naming the body."""
    response = receiver.post(b'{"spans": [')
    assert (422, "body") == (response.status_code, response.json()["field"])


def test_body_over_the_limit_is_413(receiver: Receiver) -> None:
    """A body over --max-body is refused with 413 (Content-Length known up front)."""
    before = receiver.files()
    big = {"spans": [make_span(attributes={"blob": "x" * (MAX_BODY + 10)})]}
    response = receiver.post(big)
    assert (413, before) == (response.status_code, receiver.files())


def test_chunked_body_over_the_limit_is_413(receiver: Receiver) -> None:
    """Without Content-Length the receiver counts bytes while streaming."""
    chunk = b" " * 65536

    def chunks() -> Iterator[bytes]:
        yield b'{"spans": ['
        for _ in range(MAX_BODY // len(chunk) + 2):
            yield chunk
        yield b"]}"

    response = httpx.post(
        receiver.url + "/v1/spans", content=chunks(), headers={"X-API-Key": receiver.key}
    )
    assert 413 == response.status_code


def test_gzip_body_is_accepted(receiver: Receiver) -> None:
    """A gzip request body is decompressed and written."""
    span = make_span()
    body = gzip.compress(json.dumps({"spans": [span]}).encode())
    response = receiver.post(body, headers={"Content-Encoding": "gzip"})
    assert (202, True) == (
        response.status_code,
        span["span_id"] in {r.span_id for r in receiver.records()},
    )


def test_gzip_bomb_is_413(receiver: Receiver) -> None:
    """A small gzip body that inflates past the limit is refused with 413."""
    padding = " " * (MAX_BODY * 4)
    body = gzip.compress(json.dumps({"spans": [], "pad": padding}).encode())
    response = receiver.post(body, headers={"Content-Encoding": "gzip"})
    assert (True, 413) == (len(body) < MAX_BODY, response.status_code)


def test_unknown_content_encoding_is_415(receiver: Receiver) -> None:
    """An encoding the receiver cannot decode is refused, not guessed."""
    response = receiver.post(b"{}", headers={"Content-Encoding": "br"})
    assert 415 == response.status_code


def test_too_many_spans_is_413(receiver: Receiver) -> None:
    """More spans than --max-spans in one request is a 413."""
    response = receiver.post({"spans": [make_span() for _ in range(501)]})
    assert 413 == response.status_code


def test_republished_span_keeps_the_newest_version_in_the_views(receiver: Receiver) -> None:
    """A span sent as started, then as finished, reads back as finished."""
    from span_tree.analytics import Store

    started = make_span(status="started", end_time=None)
    finished = {**started, "status": "failed", "end_time": "2026-01-02T03:04:09Z"}
    assert 202 == receiver.post({"spans": [started]}).status_code
    assert 202 == receiver.post({"spans": [finished]}).status_code
    with Store(receiver.store) as store:
        rows = store.sql(
            "select status from spans where span_id = ?", [started["span_id"]]
        ).fetchall()
    versions = [r.status for r in receiver.records() if r.span_id == started["span_id"]]
    assert ([("failed",)], ["failed", "started"]) == (rows, sorted(versions))


def test_concurrent_clients_lose_nothing(receiver: Receiver) -> None:
    """Eight clients posting at once all get 202 and every span is stored once."""
    sent: list[list[str]] = [[] for _ in range(8)]
    statuses: list[int] = []

    def client(index: int) -> None:
        with httpx.Client(timeout=30) as http:
            for _ in range(5):
                spans = [make_span() for _ in range(50)]
                response = http.post(
                    receiver.url + "/v1/spans",
                    json={"spans": spans},
                    headers={"X-API-Key": receiver.key},
                )
                statuses.append(response.status_code)
                sent[index].extend(s["span_id"] for s in spans)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wanted = {span_id for ids in sent for span_id in ids}
    stored = [r.span_id for r in receiver.records() if r.span_id in wanted]
    assert ([202] * 40, 2000, sorted(wanted)) == (statuses, len(wanted), sorted(stored))


def test_status_returns_the_health_view_for_the_key_namespace(receiver: Receiver) -> None:
    """GET /v1/status gives the key's namespace health; other namespaces are 403."""
    now = datetime.now(UTC).isoformat()
    span = make_span(app="billing", trace_id=new_trace_id(), start_time=now, end_time=now)
    assert 202 == receiver.post({"spans": [span]}).status_code
    headers = {"X-API-Key": receiver.key}
    own = httpx.get(receiver.url + "/v1/status", headers=headers, timeout=30)
    other = httpx.get(receiver.url + "/v1/status", params={"namespace": "other"}, headers=headers)
    anonymous = httpx.get(receiver.url + "/v1/status")
    body = own.json()
    assert (200, "team", 403, 401) == (
        own.status_code,
        body["namespace"],
        other.status_code,
        anonymous.status_code,
    )
    assert {"team"} == {row["namespace"] for row in body["health"]}
    assert "billing" in {row["app"] for row in body["health"]}


def test_openapi_document_is_served(receiver: Receiver) -> None:
    """The OpenAPI document lists the endpoints (the OTLP ones too)."""
    document = httpx.get(receiver.url + "/openapi.json").json()
    expected = {"/v1/spans", "/v1/traces", "/v1/logs", "/v1/health", "/v1/status"}
    assert expected == set(document["paths"])


def test_revoked_key_stops_working(receiver: Receiver, tmp_path: Path) -> None:
    """`spantree keys revoke` makes the running receiver refuse the key."""
    key = key_store(receiver.store).create("short-lived")
    assert 202 == post_until(receiver, key, 202)
    cli = [sys.executable, "-c", "from span_tree.cli import main; main()"]
    revoked = subprocess.run(
        [*cli, "keys", "revoke", key, "--store", receiver.store],
        capture_output=True,
        text=True,
        check=True,
    )
    assert ("revoked", 401, False) == (
        revoked.stdout.split()[0],
        post_until(receiver, key, 401),
        key in revoked.stdout,
    )


def post_until(receiver: Receiver, key: str, status: int) -> int:
    """POST until the answer is ``status`` (keys refresh every 0.2 s); bounded to ~5 s."""
    answer = 0
    for _ in range(100):
        answer = receiver.post({"spans": [make_span()]}, key=key).status_code
        if answer == status:
            break
        threading.Event().wait(0.05)
    return answer


def test_keys_create_prints_only_the_key(tmp_path: Path) -> None:
    """`spantree keys create` prints the key alone on stdout; `keys list` never shows it."""
    cli = [sys.executable, "-c", "from span_tree.cli import main; main()"]
    store = str(tmp_path)
    created = subprocess.run(
        [*cli, "keys", "create", "--namespace", "ops", "--store", store],
        capture_output=True,
        text=True,
        check=True,
    )
    listed = subprocess.run(
        [*cli, "keys", "list", "--store", store, "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    key = created.stdout.strip()
    entries = [json.loads(line) for line in listed.stdout.splitlines()]
    assert (1, "ops", False) == (
        len(created.stdout.splitlines()),
        key_store(store).namespace_of(key),
        key in listed.stdout,
    )
    assert ["ops"] == [entry["namespace"] for entry in entries]


# -- fuzzing -----------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)
span_fields = st.sampled_from(
    [
        "trace_id", "span_id", "parent_id", "name", "status", "start_time", "end_time",
        "duration_us", "line", "pid", "seq", "tags", "attributes", "events",
        "handled_errors", "links", "ref_src", "ref_dest", "kind", "level", "written_at",
    ]
)  # fmt: skip


@st.composite
def mutated_bodies(draw: st.DrawFn) -> bytes:
    """A valid body with one span field replaced by an arbitrary JSON value, or junk."""
    choice = draw(st.integers(0, 3))
    if choice == 0:
        return draw(st.binary(max_size=200))
    if choice == 1:
        return json.dumps(draw(json_values)).encode()
    spans = [make_span() for _ in range(draw(st.integers(1, 3)))]
    target = draw(st.integers(0, len(spans) - 1))
    spans[target][draw(span_fields)] = draw(json_values | st.integers(-(2**70), 2**70))
    tags = draw(st.none() | json_values) if choice == 3 else {}
    return json.dumps({"tags": tags, "spans": spans}).encode()


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=mutated_bodies())
def test_fuzzed_bodies_never_5xx_and_never_write_partially(receiver: Receiver, body: bytes) -> None:
    """Arbitrary bodies get 202, 413 or 422; refused ones leave the store unchanged."""
    before = receiver.files()
    response = receiver.post(body)
    assert response.status_code in (202, 413, 422)
    if response.status_code != 202:
        assert before == receiver.files()
    else:
        assert len(before) < len(receiver.files()) or response.json()["accepted"] == 0


def test_receiver_stops_cleanly(receiver: Receiver) -> None:
    """The child process is still alive after all the abuse above."""
    assert 200 == httpx.get(receiver.url + "/v1/health").status_code
    assert os.path.isdir(receiver.store)
