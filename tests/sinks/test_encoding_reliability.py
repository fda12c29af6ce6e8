"""One unencodable value loses nothing: the HTTP sink to a real receiver, Parquet, JSON lines."""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import span_tree
from span_tree._record import FinishedSpan
from span_tree.receiver import key_store
from span_tree.receiver._subprocess import ReceiverProcess
from span_tree.sinks.http import HttpSink
from span_tree.sinks.parquet import ParquetSink
from span_tree.storage.schema import table_to_records
from span_tree.testing import capture_spans

pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).parents[1] / "data" / "scripts" / "exit_workload.py"
BAD_NAME = os.fsdecode(b"caf\xe9.txt")  # a non-UTF-8 file name: a lone surrogate


def spans_with_one_bad_value(count: int) -> list[FinishedSpan]:
    """``count`` real spans; the middle one has a lone surrogate in an attribute and name."""
    with capture_spans() as spans:
        for index in range(count):
            bad = index == count // 2
            with span_tree.span(f"open {BAD_NAME}" if bad else "open", index=index) as live:
                live.set_attribute("path", BAD_NAME if bad else "plain.txt")
    return list(spans)


def stored(store: str) -> list[FinishedSpan]:
    """Every span row in a local store."""
    rows: list[FinishedSpan] = []
    for path in glob.glob(f"{store}/spans/**/*.parquet", recursive=True):
        rows.extend(table_to_records(pq.read_table(path)))
    return rows


@pytest.fixture
def receiver_and_key(tmp_path: Path) -> Iterator[tuple[ReceiverProcess, str, str]]:
    """A receiver on a fresh store, and a key for it."""
    store = str(tmp_path / "store")
    os.makedirs(store)
    key = key_store(store).create("enc")
    process = ReceiverProcess(store)
    process.start()
    yield process, key, store
    process.stop()


def test_http_sink_sends_a_batch_holding_a_lone_surrogate(
    receiver_and_key: tuple[ReceiverProcess, str, str], tmp_path: Path
) -> None:
    """512 spans, one with a non-UTF-8 file name: all 512 stored, that text repaired."""
    receiver, key, store = receiver_and_key
    spans = spans_with_one_bad_value(512)
    sink = HttpSink(receiver.url, api_key=key, spool_dir=str(tmp_path / "spool"))
    sink.export(spans)
    sink.shutdown()
    stats = sink.stats()
    rows = {row.span_id: row for row in stored(store)}
    assert (512, 1, 0, 0) == (
        len(rows),
        stats["repaired_spans"],
        stats["dropped_spans"],
        stats["spooled_spans"],
    )
    bad = rows[spans[256].span_id]
    assert ("caf\ufffd.txt", "open caf\ufffd.txt") == (bad.attributes["path"], bad.name)


def test_parquet_sink_writes_a_batch_holding_a_lone_surrogate(tmp_path: Path) -> None:
    """The Parquet sink keeps every span of the batch and repairs the bad text."""
    spans = spans_with_one_bad_value(100)
    sink = ParquetSink(str(tmp_path / "store"), spool_dir=str(tmp_path / "spool"))
    sink.export(spans)
    assert sink.force_flush(10)
    sink.shutdown()
    stats = sink.stats()
    rows = {row.span_id: row for row in stored(str(tmp_path / "store"))}
    assert (100, 1, 0) == (len(rows), stats["repaired_spans"], stats["lost_spans"])
    assert "caf\ufffd.txt" == rows[spans[50].span_id].attributes["path"]


def test_jsonl_on_a_strict_stdout_prints_every_span() -> None:
    """JSON lines on a UTF-8 stdout: the span with a lone surrogate is printed, repaired."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPANTREE_")}
    env.pop("PYTEST_CURRENT_TEST", None)
    env["PYTHONIOENCODING"] = "utf-8:strict"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "surrogate", "40"],
        capture_output=True,
        timeout=60,
        env=env,
    )
    assert 0 == result.returncode, result.stderr
    lines = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert 40 == len(lines), result.stderr
    by_index = {line["attributes"]["index"]: line for line in lines}
    assert "caf\ufffd.txt" == by_index[20]["attributes"]["path"]
