"""The receiver in its cloud setup: keys and spans in an S3 store (moto on loopback)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pyarrow.parquet as pq
import pytest

from span_tree import new_trace_id
from span_tree.receiver import key_store
from span_tree.receiver._subprocess import ReceiverProcess
from span_tree.storage.schema import table_to_records

pytestmark = pytest.mark.slow


def test_receiver_writes_spans_and_keeps_keys_in_s3(s3_endpoint: Any, s3_bucket: str) -> None:
    """Keys live hashed under <store>/keys/ in the bucket; 202 means the span is in S3."""
    store = f"s3://{s3_bucket}/traces"
    options = s3_endpoint.storage_options
    key = key_store(store, storage_options=options).create("lambda")
    receiver = ReceiverProcess(store, args=["--storage-options", json.dumps(options)])
    receiver.start()
    try:
        span = {
            "trace_id": new_trace_id(),
            "span_id": "00000000000000aa",
            "name": "handler",
            "status": "succeeded",
            "start_time": "2026-03-04T05:06:07Z",
            "end_time": "2026-03-04T05:06:08Z",
        }
        response = httpx.post(
            receiver.url + "/v1/spans",
            json={"spans": [span]},
            headers={"X-API-Key": key},
            timeout=30,
        )
    finally:
        receiver.stop()
    fs = s3_endpoint.filesystem()
    files = fs.glob(f"{s3_bucket}/traces/spans/namespace=lambda/date=2026-03-04/*.parquet")
    key_files = fs.glob(f"{s3_bucket}/traces/keys/*.json")
    with fs.open(files[0], "rb") as handle:
        records = table_to_records(pq.read_table(handle))
    assert (202, 1, 1) == (response.status_code, len(files), len(key_files))
    assert [("00000000000000aa", "lambda")] == [(r.span_id, r.namespace) for r in records]
    assert key.encode() not in fs.cat_file(key_files[0])
