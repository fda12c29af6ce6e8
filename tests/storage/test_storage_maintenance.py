"""compact, prune, ingest (and their commands), and reading older-schema files."""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from support.spans import make_spans, read_back
from typer.testing import CliRunner

import span_tree
from span_tree._record import FinishedSpan, span_to_json
from span_tree.cli import app
from span_tree.storage import (
    compact,
    ingest_lines,
    open_store,
    parse_age,
    prune,
    span_files,
    write_spans,
)
from span_tree.storage._compact import _read_bulk, _read_each
from span_tree.storage._files import REPLACES_KEY
from span_tree.storage.schema import table_to_records
from span_tree.testing import capture_spans

OLD_FILE = Path(__file__).parent.parent / "data" / "spans_schema_v0.parquet"
runner = CliRunner()


def rows_of(location_root: Path) -> list[tuple[str, str, int | None]]:
    """(span_id, status, written_at) of every row of every valid file, sorted."""
    files = span_files(open_store(str(location_root))).files
    return sorted((r.span_id, r.status, r.written_at) for r in read_back(files))


def test_compact_merges_without_losing_or_duplicating(tmp_path: Path) -> None:
    """Many small files become one; every row, written_at included, is kept exactly."""
    location = open_store(str(tmp_path))
    for _ in range(5):
        write_spans(location, make_spans(2))
    before = rows_of(tmp_path)
    result = compact(location, min_age=0)
    assert (5, 1, len(before)) == (result.files_in, result.files_out, result.rows)
    assert before == rows_of(tmp_path)
    assert 1 == len(span_files(location).files)


def test_compact_leaves_young_files_alone(tmp_path: Path) -> None:
    """Files younger than min_age (writers may still be adding near them) are untouched."""
    location = open_store(str(tmp_path))
    paths = [write_spans(location, make_spans(1))[0] for _ in range(3)]
    result = compact(location, min_age=3600)
    assert (0, sorted(paths)) == (result.files_in, span_files(location).files)


def test_compact_before_date_only(tmp_path: Path) -> None:
    """--before limits compaction to partitions dated earlier than the given day."""
    location = open_store(str(tmp_path))
    for _ in range(2):
        write_spans(location, [s._replace(date="2024-01-01") for s in make_spans(1)])
        write_spans(location, [s._replace(date="2024-02-01") for s in make_spans(1)])
    compact(location, min_age=0, before="2024-02-01")
    dates = sorted(Path(p).parent.name for p in span_files(location).files)
    assert ["date=2024-01-01", "date=2024-02-01", "date=2024-02-01"] == dates


def test_compact_splits_by_target_rows(tmp_path: Path) -> None:
    """No merged file exceeds target_rows."""
    location = open_store(str(tmp_path))
    for _ in range(6):
        write_spans(location, make_spans(1))  # 2 rows each
    compact(location, min_age=0, target_rows=4)
    sizes = sorted(pq.read_metadata(p).num_rows for p in span_files(location).files)
    assert [4, 4, 4] == sizes


def test_replaced_inputs_stay_until_a_pass_after_the_grace_period(tmp_path: Path) -> None:
    """Merged inputs stay (hidden from readers) until a later pass past the grace period."""
    location = open_store(str(tmp_path))
    inputs = sorted(write_spans(location, make_spans(1))[0] for _ in range(3))
    before = rows_of(tmp_path)
    first = compact(location, min_age=0, grace=0)
    merged = [p for p in span_files(location).files if p not in inputs]
    assert (3, 1, 0) == (first.files_in, first.files_out, first.removed_replaced)
    assert 3 == len(pq.read_metadata(merged[0]).metadata[REPLACES_KEY].split(b","))
    assert before == rows_of(tmp_path)
    assert 0 == compact(location, min_age=0, grace=3600).removed_replaced  # too recent
    assert sorted([*inputs, *merged]) == sorted(str(p) for p in tmp_path.rglob("*.parquet"))
    assert 3 == compact(location, min_age=0, grace=0).removed_replaced
    assert (merged, before) == (
        sorted(str(p) for p in tmp_path.rglob("*.parquet")),
        rows_of(tmp_path),
    )


def test_old_schema_file_reads_and_compacts(tmp_path: Path) -> None:
    """A schema_version 0 file (fewer columns) is valid, reads, and merges with new files."""
    location = open_store(str(tmp_path))
    partition = tmp_path / "spans" / "namespace=default" / "date=2023-11-14"
    partition.mkdir(parents=True)
    old = partition / "2YCqOE3oTwHbhWbqvh3uqmAIpRA.parquet"
    shutil.copy(OLD_FILE, old)
    new = write_spans(location, [s._replace(date="2023-11-14") for s in make_spans(1)])
    found = span_files(location)
    assert ([], sorted([str(old), *new])) == (found.problems, found.files)
    records = table_to_records(pq.read_table(old))
    assert [("old.root", 0), ("old.child", 0)] == [(r.name, r.schema_version) for r in records]
    count = duckdb.execute(
        "select count(*), count(tags), min(schema_version)"
        " from read_parquet(?, hive_partitioning=true, union_by_name=true)",
        [found.urls],
    ).fetchall()
    assert [(4, 2, 0)] == count
    compact(location, min_age=0)
    merged = span_files(location).files
    assert 1 == len(merged)
    assert {0, 1} == {r.schema_version for r in read_back(merged)}


def _varied_spans() -> list[FinishedSpan]:
    """Spans with every kind of value: errors, handled errors, events, tags, links, nulls."""
    log = logging.getLogger("test.varied")
    with capture_spans() as spans:
        for index in range(10):
            with span_tree.span("root", index=index, text="é ✓ \u2028") as root:
                root.set_tags(run=str(index))
                with contextlib.suppress(ValueError), span_tree.span("child"):
                    log.info("step %s", index, extra={"n": index})
                    try:
                        raise KeyError("handled")
                    except KeyError:
                        log.exception("caught")
                    raise ValueError(f"failed {index}")
    started = spans[0]._replace(status="started", end_time=None, duration_us=None, events=())
    bare = spans[1]._replace(
        parent_id=None, file=None, line=None, function=None, task=None, attributes={},
        tags={}, links=("2ZbWQnIc5sDs9mMCq8kP4nBvYzA",), ref_src=("r1",), ref_dest=("r2", "r3"),
    )  # fmt: skip
    return [started, bare, *spans]


def test_bulk_read_of_many_files_equals_the_file_by_file_read(tmp_path: Path) -> None:
    """Files read in one DuckDB scan give exactly the rows and types read file by file."""
    location = open_store(str(tmp_path))
    spans = _varied_spans()
    paths = [Path(write_spans(location, spans[start::10])[0]) for start in range(10)]
    directory, names = str(paths[0].parent), [path.name for path in paths]
    bulk = _read_bulk(location, directory, names, 2)
    each = pa.concat_tables(_read_each(location, directory, names, 1))  # type: ignore[arg-type]
    assert bulk is not None
    assert (each.schema, each.to_pylist()) == (bulk.schema, bulk.to_pylist())


def test_compaction_skips_and_names_a_corrupt_file_among_many(tmp_path: Path) -> None:
    """A corrupt file in a group read in bulk is skipped and named; the others are merged."""
    location = open_store(str(tmp_path))
    paths = [write_spans(location, make_spans(1))[0] for _ in range(10)]
    data = bytearray(Path(paths[3]).read_bytes())
    data[4:2000] = b"U" * 1996  # the pages; the footer still reads
    Path(paths[3]).write_bytes(bytes(data))
    expected = sorted((r.span_id, r.status) for r in read_back([p for p in paths if p != paths[3]]))
    result = compact(location, min_age=0)
    assert ([location.url_of(paths[3])], 9, 1) == (
        [path for path, _ in result.skipped],
        result.files_in,
        result.files_out,
    )
    merged = [p for p in span_files(location).files if p not in paths]
    assert expected == sorted((r.span_id, r.status) for r in read_back(merged))


def test_prune_deletes_old_partitions_only(tmp_path: Path) -> None:
    """prune removes whole partitions older than the retention, keeps the rest."""
    location = open_store(str(tmp_path))
    now = datetime(2025, 3, 31, 12, tzinfo=UTC)
    for date in ("2025-02-01", "2025-03-01", "2025-03-30"):
        write_spans(location, [s._replace(date=date) for s in make_spans(1)])
    dry = prune(location, older_than=timedelta(days=30), now=now, dry_run=True)
    assert ("2025-03-01", ["2025-02-01"]) == (dry.cutoff, [p.date for p in dry.partitions])
    assert 3 == len(span_files(location).files)
    prune(location, older_than=timedelta(days=30), now=now)
    dates = sorted(Path(p).parent.name for p in span_files(location).files)
    assert ["date=2025-03-01", "date=2025-03-30"] == dates


@pytest.mark.parametrize(
    ("text", "expected"),
    [("30d", timedelta(days=30)), ("12h", timedelta(hours=12)), ("2w", timedelta(weeks=2)),
     ("7", timedelta(days=7)), ("90s", timedelta(seconds=90)), ("1.5d", timedelta(hours=36))],
)  # fmt: skip
def test_parse_age(text: str, expected: timedelta) -> None:
    """Retention ages: seconds to weeks, decimals allowed; a bare number is days."""
    assert expected == parse_age(text)


@pytest.mark.parametrize("text", ["45s", "90m", "2h", "1.5d", "2w", "7"])
def test_query_filters_read_ages_as_prune_does(text: str) -> None:
    """--since ages and --older-than ages are read by the same parser."""
    from span_tree.analytics import parse_time

    now = datetime(2025, 3, 31, 12, tzinfo=UTC)
    assert now - parse_age(text) == parse_time(text, now=now)


def test_ingest_mixed_lines_keeps_both_versions(tmp_path: Path) -> None:
    """Other log lines are skipped and counted; started+finished versions both land."""
    span = make_spans(1)[0]
    started = span._replace(status="started", end_time=None, duration_us=None)
    lines = [
        "START RequestId: 1",
        "2025-01-01T00:00:00Z INFO " + span_to_json(started),  # collector prefix
        json.dumps({"level": "info", "msg": "a JSON log line that is not a span"}),
        span_to_json(span),
        '{"spantree": 1, "trace_id": ""}',
        "",
    ]
    result = ingest_lines(open_store(str(tmp_path)), lines)
    assert (2, 2, 1) == (result.spans, result.skipped_lines, result.invalid_lines)
    assert [(5, "trace_id: must be a non-empty string")] == result.errors
    versions = sorted(
        (r.written_at, r.status) for r in read_back(result.files) if r.span_id == span.span_id
    )
    assert ["started", "succeeded"] == [status for _, status in versions]


def test_ingest_command_reads_stdin(tmp_path: Path) -> None:
    """`spantree ingest -` reads stdin; the namespace option overrides the spans'."""
    text = "noise\n" + "".join(span_to_json(s) + "\n" for s in make_spans(2))
    result = runner.invoke(app, ["ingest", "-", "--store", str(tmp_path), "-n", "ops"], input=text)
    assert 0 == result.exit_code, result.output
    assert "ingested 4 spans into 1 file(s); skipped 1 other line(s); 0 invalid\n" == result.stdout
    assert {"ops"} == {r.namespace for r in read_back(span_files(open_store(str(tmp_path))).files)}


def test_ingest_command_missing_file(tmp_path: Path) -> None:
    """A missing input file is a clear error, not a traceback."""
    result = runner.invoke(app, ["ingest", str(tmp_path / "nope.jsonl"), "--store", str(tmp_path)])
    assert 1 == result.exit_code
    assert "error: cannot read" in result.stderr


def test_compact_and_prune_commands(tmp_path: Path) -> None:
    """`spantree compact` and `spantree prune` report what they did."""
    location = open_store(str(tmp_path))
    for _ in range(2):
        write_spans(location, [s._replace(date="2001-01-01") for s in make_spans(1)])
    compacted = runner.invoke(app, ["compact", "--store", str(tmp_path), "--min-age", "0"])
    assert 0 == compacted.exit_code, compacted.output
    assert compacted.stdout.startswith("compacted 2 file(s) into 1 in 1 partition(s), 4 rows")
    pruned = runner.invoke(app, ["prune", "--store", str(tmp_path), "--older-than", "30d"])
    assert 0 == pruned.exit_code, pruned.output
    assert "deleted namespace=default/date=2001-01-01\n" in pruned.stdout
    bad = runner.invoke(app, ["compact", "--store", str(tmp_path), "--before", "yesterday"])
    assert 1 == bad.exit_code  # bad input: one `error:` line, exit 1 (as every command)
    assert bad.output.startswith("error: "), bad.output


def test_compact_command_grace_option(tmp_path: Path) -> None:
    """`spantree compact` keeps merged inputs through --grace; a later run deletes them."""
    location = open_store(str(tmp_path))
    for _ in range(3):
        write_spans(location, [s._replace(date="2001-01-01") for s in make_spans(1)])
    command = ["compact", "--store", str(tmp_path), "--min-age", "0"]
    assert 0 == runner.invoke(app, command).exit_code
    assert 4 == len(list(tmp_path.rglob("*.parquet")))  # inputs kept for readers
    second = runner.invoke(app, [*command, "--grace", "0"])
    assert 0 == second.exit_code, second.output
    assert "removed 3 replaced" in second.stdout
    assert 1 == len(list(tmp_path.rglob("*.parquet")))
