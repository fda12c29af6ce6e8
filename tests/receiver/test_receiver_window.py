"""The receiver over real HTTP refuses span start times readers cannot use, and naming them."""

from __future__ import annotations

import glob
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pyarrow.parquet as pq
import pytest

from span_tree.receiver import key_store
from span_tree.receiver._subprocess import ReceiverProcess
from span_tree.storage.schema import table_to_records

pytestmark = pytest.mark.slow


class Receiver:
    """A running receiver (max age 30 days, at most 5 days per request) and its key."""

    def __init__(self, process: ReceiverProcess, store: str, key: str) -> None:
        self.process, self.store, self.key = process, store, key

    def post(self, payload: Any) -> httpx.Response:
        """POST a JSON body to /v1/spans."""
        return httpx.post(
            self.process.url + "/v1/spans",
            content=json.dumps(payload).encode(),
            headers={"X-API-Key": self.key},
            timeout=30,
        )

    def rows(self) -> list[Any]:
        """Every span row in the store."""
        rows = []
        for path in glob.glob(f"{self.store}/spans/**/*.parquet", recursive=True):
            rows.extend(table_to_records(pq.read_table(path)))
        return rows


@pytest.fixture(scope="module")
def receiver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Receiver]:
    """One receiver for the module, started through `spantree serve` options."""
    store = str(tmp_path_factory.mktemp("store"))
    key = key_store(store).create("window")
    process = ReceiverProcess(store, args=["--max-age-days", "30", "--max-partitions", "5"])
    process.start()
    try:
        yield Receiver(process, store, key)
    finally:
        process.stop()


_ids = iter(range(10**9))


def span_at(start: str | int, **extra: Any) -> dict[str, Any]:
    """A valid span starting at ``start`` (ISO text or µs since the epoch)."""
    return {
        "trace_id": "2ZbWQnIc5sDs9mMCq8kP4nBvYzA",
        "span_id": f"{next(_ids):016x}",
        "name": "work",
        "status": "succeeded",
        "start_time": start,
        **extra,
    }


def iso(moment: datetime) -> str:
    """ISO 8601 with a Z, as the library prints it."""
    return moment.isoformat().replace("+00:00", "Z")


NOW = datetime.now(UTC)


@pytest.mark.parametrize(
    "start",
    [
        iso(NOW + timedelta(days=8)),
        iso(NOW - timedelta(days=31)),
        "0001-01-01T00:00:00Z",
        -5_000_000,
        "1969-12-31T23:59:59Z",
        4_611_686_018_427_387_904,  # year 148108 in µs
    ],
)
def test_start_outside_the_window_is_422_naming_the_span(receiver: Receiver, start: Any) -> None:
    """A span too far ahead, older than the retention or unplaceable: 422, nothing kept."""
    before = len(receiver.rows())
    good = [span_at(iso(NOW)) for _ in range(3)]
    response = receiver.post({"spans": [*good[:2], span_at(start), good[2]]})
    assert 422 == response.status_code, response.text
    detail = response.json()
    assert (2, [2], "start_time") == (detail["index"], detail["indices"], detail["field"])
    assert "index 2" in detail["error"]
    assert before == len(receiver.rows())


def test_spans_on_too_many_days_are_422(receiver: Receiver) -> None:
    """Spans spread over 6 days in one request (limit 5): 422, no partition created."""
    before = len(receiver.rows())
    spans = [span_at(iso(NOW - timedelta(days=day))) for day in range(6)]
    response = receiver.post({"spans": spans})
    assert 422 == response.status_code, response.text
    assert "6 different days" in response.json()["error"]
    assert before == len(receiver.rows())


def test_spans_inside_the_window_are_stored(receiver: Receiver) -> None:
    """Spans from the last days (within the limits) are accepted and stored."""
    spans = [span_at(iso(NOW - timedelta(days=day, hours=1))) for day in range(5)]
    response = receiver.post({"spans": spans})
    assert 202 == response.status_code, response.text
    stored = {row.span_id for row in receiver.rows()}
    assert {span["span_id"] for span in spans} <= stored


def test_body_tags_that_are_not_strings_are_converted_like_span_tags(receiver: Receiver) -> None:
    """Body-level tags of any JSON type are stored as text, exactly as span-level ones are."""
    tags = {"build": 42, "canary": True, "ratio": 0.5}
    span = span_at(iso(NOW), tags={"own": 7})
    response = receiver.post({"tags": tags, "spans": [span]})
    assert 202 == response.status_code, response.text
    row = next(row for row in receiver.rows() if row.span_id == span["span_id"])
    assert {"build": "42", "canary": "True", "ratio": "0.5", "own": "7"} == dict(row.tags)


def test_default_receiver_takes_old_spans_but_not_before_1970(tmp_path: Path) -> None:
    """Without --max-age-days a span from 2020 is stored; one from year 1 is still refused."""
    store = str(tmp_path / "store")
    key = key_store(store).create("window")
    process = ReceiverProcess(store)
    process.start()
    try:
        receiver = Receiver(process, store, key)
        assert 202 == receiver.post({"spans": [span_at("2020-01-01T00:00:00Z")]}).status_code
        refused = receiver.post({"spans": [span_at("0001-01-01T00:00:00Z")]})
        assert 422 == refused.status_code, refused.text
    finally:
        process.stop()
