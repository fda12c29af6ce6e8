"""The same thing is shown the same way everywhere (issue 14 §5): the JSON shape of tags
and attributes, error type names, handled/fatal, what counts count, durations, and the
namespace when rows come from several."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from support.analytics_store import (
    BASE_US,
    TRACE_IDS,
    build_records,
    build_store,
    make_span,
    traceback_text,
)
from support.cli import run

from span_tree._display import short_error_type
from span_tree.storage import open_store, write_spans


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The fixture store's path (the tests only read it)."""
    return build_store(tmp_path_factory.mktemp("store"))


@pytest.fixture(scope="module")
def two_namespaces(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The fixture store plus a `billing` namespace whose error type is module-qualified."""
    root = tmp_path_factory.mktemp("two")
    build_store(root)
    trace = "3" + "B" * 26
    error = ("billing.errors.CardDeclined", "card declined", traceback_text("/b.py", "pay", "x"))
    failed = make_span(
        trace, "pay", start_us=BASE_US, duration_us=50, status="failed", error=error
    )._replace(namespace="billing", attributes={"amount": 12})
    write_spans(open_store(str(root)), [failed])
    return str(root)


def test_tags_and_attributes_are_objects_in_every_format(store: str) -> None:
    """tags and attributes are JSON objects in json and csv ({} when empty, never [])."""
    query = "select span_id, tags, attributes from spans order by span_id"
    _, as_json, _ = run("sql", query, "-f", "json", "--store", store)
    rows = json.loads(as_json)
    assert {(dict, dict)} == {(type(r["tags"]), type(r["attributes"])) for r in rows}
    _, as_csv, _ = run("sql", query, "-f", "csv", "--store", store)
    parsed = [
        (json.loads(r["tags"]), json.loads(r["attributes"]))
        for r in csv.DictReader(io.StringIO(as_csv))
    ]
    assert [(r["tags"], r["attributes"]) for r in rows] == parsed
    _, empty, _ = run("sql", "select map {} as tags", "-f", "json", "--store", store)
    assert [{"tags": {}}] == json.loads(empty)


def test_error_types_are_class_names_in_tables(two_namespaces: str) -> None:
    """Tables, trees and the TUI name an error type by its class; json keeps it whole."""
    assert "CardDeclined" == short_error_type("billing.errors.CardDeclined")
    _, table, _ = run("errors", "-f", "table", "--store", two_namespaces)
    assert "CardDeclined" in table
    assert "billing.errors" not in table
    _, as_json, _ = run("errors", "-f", "json", "--store", two_namespaces)
    assert "billing.errors.CardDeclined" in {g["error_type"] for g in json.loads(as_json)}


def test_error_groups_say_what_they_count(store: str) -> None:
    """The errors table heads its counts `traces` and `occurrences`, and says handled/fatal."""
    _, table, _ = run("errors", "-f", "table", "--store", store)
    header = table.splitlines()[1].split()
    assert ["traces", "occurrences", "handled"] == header[1:4]
    kinds = {line.split()[3] for line in table.splitlines()[3:] if line.strip()[:1].isalnum()}
    assert {"handled", "fatal"} >= (kinds - {"(long"})


def test_namespace_column_when_rows_span_namespaces(store: str, two_namespaces: str) -> None:
    """Without -n, rows from several namespaces get a namespace column; one namespace does
    not."""
    for command in (["traces"], ["errors"], ["slow", "--over", "0.001"]):
        _, several, _ = run(*command, "-f", "table", "--store", two_namespaces)
        _, one, _ = run(*command, "-f", "table", "--store", store)
        assert ("namespace" in several.splitlines()[1], "namespace" in one.splitlines()[1]) == (
            True,
            False,
        ), command


def test_trace_errors_shows_tracebacks(store: str) -> None:
    """`spantree trace ID --errors` puts the tracebacks in the tree."""
    _, plain, _ = run("trace", TRACE_IDS["T2"], "--store", store)
    _, with_errors, _ = run("trace", TRACE_IDS["T2"], "--errors", "--store", store)
    assert "Traceback (most recent call last):" not in plain
    assert "Traceback (most recent call last):" in with_errors


def test_min_age_takes_the_older_than_syntax(tmp_path: Path) -> None:
    """compact --min-age reads ages like prune --older-than (45s, 5m, 2h)."""
    records, _ = build_records()
    write_spans(open_store(str(tmp_path)), records[:3])
    write_spans(open_store(str(tmp_path)), records[3:6])
    code, out, _ = run("compact", "--min-age", "0s", "--store", str(tmp_path))
    assert (0, True) == (code, out.startswith("compacted 2 file(s) into 1"))
    code, _, err = run("compact", "--min-age", "5 minutes", "--store", str(tmp_path))
    assert 1 == code
    assert "Invalid value for --min-age" in err


def test_views_list_span_versions(store: str) -> None:
    """`sql --views` lists span_versions and leaves out helper views."""
    _, out, _ = run("sql", "--views", "-f", "csv", "--store", store)
    views = [row["view"] for row in csv.DictReader(io.StringIO(out))]
    assert "span_versions" == views[0]
    assert not {"span_duplicates", "annotation_versions"} & set(views)
