"""list_span_files: asked-for partitions only, no ordinary footer read, legacy, supersession."""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from support.spans import make_spans

from span_tree.storage import list_span_files, open_store, resolve_compacted, write_spans
from span_tree.storage._layout import compacted_file_name, new_file_name
from span_tree.storage._listing import LEGACY_KEY, REPLACES_KEY

BATCH_A = "2Qe0Vq1cGm0vwyVn7b9y0Bo8aAa"
BATCH_B = "2Qe0Vq1cGm0vwyVn7b9y0Bo8aAb"


def compacted_from(
    directory: Path, inputs: list[str], *, replaces: list[str] | None = None, name: str = ""
) -> str:
    """Write a compacted file holding the rows of ``inputs`` (names in ``directory``)."""
    table = pa.concat_tables([pq.read_table(directory / item) for item in inputs])
    names = replaces if replaces is not None else inputs
    table = table.replace_schema_metadata(
        {**(table.schema.metadata or {}), REPLACES_KEY: ",".join(names).encode(), LEGACY_KEY: b"0"}
    )
    name = name or compacted_file_name()
    pq.write_table(table, directory / name)
    return name


def row_count(paths: list[str]) -> int:
    """Rows in ``paths``."""
    return sum(pq.read_metadata(path).num_rows for path in paths)


def test_date_range_lists_only_the_partitions_asked_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A one-day range lists the namespace directories and that day's partitions only."""
    location = open_store(str(tmp_path))
    for day in ("2026-01-01", "2026-01-02", "2026-01-03"):
        for namespace in ("a", "b"):
            spans = [s._replace(date=day, namespace=namespace) for s in make_spans(1)]
            write_spans(location, spans)
    listed: list[str] = []
    original = os.scandir

    def spy(path: Any) -> Any:
        listed.append(str(path).removeprefix(str(tmp_path)))
        return original(path)

    monkeypatch.setattr(os, "scandir", spy)
    found = list_span_files(location, first_date="2026-01-02", last_date="2026-01-02")
    monkeypatch.undo()
    partitions = sorted(
        {path.rpartition("/")[0].removeprefix(str(tmp_path)) for path in found.files}
    )
    expected = ["/spans/namespace=a/date=2026-01-02", "/spans/namespace=b/date=2026-01-02"]
    assert expected == partitions
    assert ["/spans", "/spans/namespace=a", "/spans/namespace=b", *expected] == listed


def test_local_listing_matches_fsspec(tmp_path: Path) -> None:
    """The os.scandir listing of a local store finds what fsspec's recursive find finds."""
    location = open_store(str(tmp_path))
    for day in ("2026-01-01", "2026-01-02"):
        for namespace in ("a", "b"):
            spans = [s._replace(date=day, namespace=namespace) for s in make_spans(3)]
            write_spans(location, spans)
    (tmp_path / "spans" / "stray.parquet").write_bytes(b"x")
    found = list_span_files(location)
    everything = location.fs.find(location.spans_root, detail=True)
    expected = sorted(
        path
        for path in everything
        if path.rpartition("/")[0].rpartition("/")[2].startswith("date=")
    )
    assert expected == found.files
    assert [everything[path]["size"] for path in expected] == found.sizes
    assert [location.url_of(f"{location.spans_root}/stray.parquet")] == [
        problem.path for problem in found.problems
    ]


def test_namespace_and_open_ended_ranges(tmp_path: Path) -> None:
    """namespace= and a range open on one side select the partitions they name."""
    location = open_store(str(tmp_path))
    for day in ("2026-01-01", "2026-01-02", "2026-01-03"):
        for namespace in ("a", "b"):
            write_spans(
                location, [s._replace(date=day, namespace=namespace) for s in make_spans(1)]
            )

    def days(found: Any) -> list[str]:
        return sorted(f"{Path(p).parent.parent.name}/{Path(p).parent.name}" for p in found.files)

    assert ["namespace=a/date=2026-01-02", "namespace=a/date=2026-01-03"] == days(
        list_span_files(location, namespace="a", first_date="2026-01-02")
    )
    assert ["namespace=a/date=2026-01-01", "namespace=b/date=2026-01-01"] == days(
        list_span_files(location, last_date="2026-01-01")
    )
    assert 6 == len(list_span_files(location).files)
    assert [] == list_span_files(location, namespace="nope", first_date="2026-01-01").files
    assert [] == list_span_files(open_store(str(tmp_path / "none")), first_date="2026-01-01").files


def test_no_footer_of_an_ordinary_file_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Listing opens no batch or legacy file: a corrupt one is listed, found later by readers."""
    location = open_store(str(tmp_path))
    good = write_spans(location, make_spans(1))[0]
    corrupt = f"{Path(good).parent}/{BATCH_A}.b.parquet"
    Path(corrupt).write_bytes(b"PAR1 garbage garbage PAR1")

    def no_open(*args: object, **kwargs: object) -> None:
        raise AssertionError("a footer was read")

    monkeypatch.setattr(location.fs, "open", no_open)
    found = list_span_files(location)
    assert (sorted([good, corrupt]), []) == (found.files, found.problems)


def test_legacy_flag_from_the_name_and_the_compacted_footer(tmp_path: Path) -> None:
    """Bare-KSUID files are legacy, batch files are not, a compacted file says so itself."""
    location = open_store(str(tmp_path))
    batch = write_spans(location, make_spans(1))[0]
    directory = Path(batch).parent
    legacy = directory / new_file_name()
    legacy.write_bytes(Path(batch).read_bytes())
    from_legacy = compacted_from(directory, [legacy.name])
    table = pq.read_table(directory / from_legacy)
    pq.write_table(
        table.replace_schema_metadata({**table.schema.metadata, LEGACY_KEY: b"1"}),
        directory / from_legacy,
    )
    found = list_span_files(location)
    flags = {Path(path).name: flag for path, flag in zip(found.files, found.legacy, strict=True)}
    assert {Path(batch).name: False, from_legacy: True} == flags
    assert [location.url_of(str(directory / from_legacy))] == found.legacy_urls


def test_same_batch_id_written_twice_is_one_file(tmp_path: Path) -> None:
    """Writing a batch again under its id replaces its file in each partition: no new rows."""
    location = open_store(str(tmp_path))
    spans = make_spans(2)
    two_days = spans + [s._replace(date="2020-02-02") for s in spans]
    first = write_spans(location, two_days, batch_id=BATCH_A)
    again = write_spans(location, two_days, batch_id=BATCH_A)
    found = list_span_files(location)
    assert sorted(first) == sorted(again) == found.files
    assert {f"{BATCH_A}.b.parquet"} == {Path(path).name for path in found.files}
    assert len(two_days) == row_count(found.files)


def test_compacted_file_replaces_its_inputs(tmp_path: Path) -> None:
    """Inputs a compacted file names (even a crash leftover, even rewritten) are not read."""
    location = open_store(str(tmp_path))
    paths = [write_spans(location, make_spans(1))[0] for _ in range(3)]
    directory = Path(paths[0]).parent
    merged = compacted_from(directory, [Path(p).name for p in paths[:2]])
    found = list_span_files(location)
    assert sorted([str(directory / merged), paths[2]]) == found.files
    assert 6 == row_count(found.files)
    Path(paths[0]).unlink()  # the later pass removes the inputs; a retry writes one again
    Path(paths[0]).write_bytes(Path(paths[1]).read_bytes())
    assert found.files == list_span_files(location).files


def test_overlapping_compacted_outputs_exactly_one_wins(tmp_path: Path) -> None:
    """Two concurrent compactors' overlapping outputs: one is read, rows counted once."""
    location = open_store(str(tmp_path))
    paths = [write_spans(location, make_spans(1))[0] for _ in range(4)]
    names = [Path(p).name for p in paths]
    directory = Path(paths[0]).parent
    first = compacted_from(directory, names[:2])
    second = compacted_from(directory, names[1:3])
    found = list_span_files(location)
    assert 8 == row_count(found.files)
    winner = min(first, second)  # same size: the smaller name
    assert str(directory / winner) in found.files
    assert ({first, second} - {winner}).isdisjoint(Path(p).name for p in found.files)


def test_compaction_of_a_compacted_file_supersedes_it(tmp_path: Path) -> None:
    """A file compacted from a compacted file plus new files wins; nothing doubles."""
    location = open_store(str(tmp_path))
    paths = [write_spans(location, make_spans(1))[0] for _ in range(4)]
    names = [Path(p).name for p in paths]
    directory = Path(paths[0]).parent
    level1 = compacted_from(directory, names[:2])
    level2 = compacted_from(directory, [level1, names[2]], replaces=[level1, *names[:3]])
    found = list_span_files(location)
    assert sorted([str(directory / level2), paths[3]]) == found.files
    assert 8 == row_count(found.files)


def test_resolve_compacted_is_deterministic() -> None:
    """The rule depends on the set of files only, never on the order they are listed in."""
    compacted = {
        "A.c.parquet": {"1", "2"},
        "B.c.parquet": {"2", "3"},
        "C.c.parquet": {"A.c.parquet", "1", "2", "4"},
        "D.c.parquet": {"5"},
        "E.c.parquet": {"5", "6"},
    }
    expected = ({"C.c.parquet", "E.c.parquet"}, {"A.c.parquet", "1", "2", "4", "5", "6"})
    items = list(compacted.items())
    for _ in range(10):
        random.shuffle(items)
        assert expected == resolve_compacted(dict(items))


def test_unreadable_compacted_file_is_a_problem_and_its_inputs_stay(tmp_path: Path) -> None:
    """A compacted file whose footer does not read is reported; its inputs are read instead."""
    location = open_store(str(tmp_path))
    paths = [write_spans(location, make_spans(1))[0] for _ in range(2)]
    broken = Path(paths[0]).parent / compacted_file_name()
    broken.write_bytes(b"PAR1 not a footer PAR1")
    found = list_span_files(location)
    assert (sorted(paths), [str(broken)]) == (found.files, [p.path for p in found.problems])
