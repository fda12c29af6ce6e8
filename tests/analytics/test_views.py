"""The SQL views against hand-computed expectations on the small fixture store."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.analytics_store import (
    TRACE_IDS,
    build_records,
    build_store,
    make_span,
    traceback_text,
)

from span_tree.analytics import VIEW_NAMES, Store
from span_tree.storage import open_store, write_spans


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """The fixture store, opened once for the module (the tests only read it)."""
    return Store(build_store(tmp_path_factory.mktemp("store")))


def test_spans_keeps_the_newest_version(store: Store) -> None:
    """Finished beats started, whichever was written last; one row per span."""
    rows = store.sql(
        "select name, status, duration_us from spans where name in ('background', 'late')"
        " order by name"
    ).fetchall()
    assert [("background", "succeeded", 700), ("late", "succeeded", 800)] == rows
    duplicates = store.sql(
        "select count(*) from"
        " (select trace_id, span_id from spans group by all having count(*) > 1)"
    ).fetchall()
    assert [(0,)] == duplicates


def test_span_versions_keeps_every_row(store: Store) -> None:
    """The root view holds every version; spans drops exactly the two older ones."""
    versions = store.sql("select count(*) from span_versions").fetchall()[0][0]
    spans = store.sql("select count(*) from spans").fetchall()[0][0]
    assert 2 == versions - spans


def test_span_stats_percentiles(store: Store) -> None:
    """db.query durations 100,200,300,400,1000 µs give linear-interpolated percentiles."""
    row = store.pl(
        "select count, error_count, p50_us, p90_us, p95_us, p99_us, max_us from span_stats"
        " where name = 'db.query'"
    ).row(0)
    assert pytest.approx((5, 0, 300.0, 760.0, 880.0, 976.0, 1000)) == row


def test_span_stats_error_rate(store: Store) -> None:
    """checkout failed 2 of 4 times."""
    row = store.pl("select count, error_count, error_rate from span_stats where name = 'checkout'")
    assert (4, 2, 0.5) == row.row(0)


def test_slow_spans_over_the_p95(store: Store) -> None:
    """Only the 1000 µs query is over db.query's p95 (880 µs)."""
    rows = store.sql(
        "select duration_us, round(p95_us) from slow_spans where name = 'db.query'"
    ).fetchall()
    assert [(1000, 880.0)] == rows


def test_traces_view_row(store: Store) -> None:
    """A trace row: root name, status, duration of the root, span and error counts."""
    row = store.pl(
        "select root_name, status, duration_us, span_count, error_count, handled_error_count,"
        " app from traces where trace_id = ?",
        [TRACE_IDS["T4"]],
    ).row(0)
    assert ("checkout", "succeeded", 5000, 3, 0, 1, "checkout") == row


def test_error_groups_group_the_same_bug(store: Store) -> None:
    """T2 and T3 (other order number, other path) share one group; T5 is another bug."""
    groups = store.pl(
        "select handled, error_type, location, pattern, count, trace_count, status, level"
        " from error_groups order by handled, location"
    ).rows()
    assert [
        (
            False,
            "ValueError",
            "orders.py:load_order",
            "order <n> not found in <str>",
            2,
            2,
            "open",
            "WARN",
        ),
        (
            False,
            "ValueError",
            "parse.py:parse_header",
            "bad header in row <n>",
            1,
            1,
            "open",
            "WARN",
        ),
        (True, "KeyError", "cache.py:get", "<str>", 1, 1, "open", "OK"),
    ] == groups


def test_error_group_sample_is_the_latest(store: Store) -> None:
    """The sample trace and message of a group are those of its newest occurrence."""
    row = store.pl(
        "select sample_trace_id, sample_message from error_groups"
        " where location = 'orders.py:load_order'"
    ).row(0)
    assert (TRACE_IDS["T3"], "order 98765 not found in '/srv/b/c.csv'") == row


def test_run_sequences(store: Store) -> None:
    """checkout runs: ok, fail (first failure after a success), fail (streak 2), ok."""
    rows = store.pl(
        "select sequence, status, previous_status, streak, first_failure_after_success,"
        " is_latest from run_sequences where root_name = 'checkout' order by sequence"
    ).rows()
    assert [
        (1, "succeeded", None, 1, False, False),
        (2, "failed", "succeeded", 1, True, False),
        (3, "failed", "failed", 2, False, False),
        (4, "succeeded", "failed", 1, False, True),
    ] == rows


def test_run_sequences_split_by_tags(store: Store) -> None:
    """Each tag combination is its own series."""
    rows = store.pl(
        "select root_name, tag_key, max(sequence) from run_sequences group by all order by 1"
    ).rows()
    assert [
        ("checkout", "env=prod", 4),
        ("ping", "env=prod", 6),
        ("report", "env=prod,job=daily", 1),
    ] == rows


def test_dashboard(store: Store) -> None:
    """One row per kind of run: latest status, counts, p50/p99 of run durations."""
    rows = store.pl(
        "select name, status, runs, succeeded, failed, p50_us, p99_us from dashboard order by name"
    ).rows()
    assert [
        ("checkout", "succeeded", 4, 2, 2, 5000.0, 5000.0),
        ("ping", "succeeded", 6, 6, 0, 50.0, 50.0),
        ("report", "failed", 1, 0, 1, 9000.0, 9000.0),
    ] == rows


def test_health_from_error_rates(store: Store) -> None:
    """reporter failed 1 of 1 (ALERT); checkout 2 of 10 (WARN)."""
    rows = store.pl("select app, level, traces, failed from health order by app").rows()
    assert [("checkout", "WARN", 10, 2), ("reporter", "ALERT", 1, 1)] == rows


def test_annotations_newest_wins_and_drive_health(tmp_path: Path) -> None:
    """The newest annotation is shown on the group and sets its level in health."""
    store = Store(build_store(tmp_path))
    fingerprint = store.pl(
        "select fingerprint from error_groups where location = 'orders.py:load_order'"
    ).item()
    store.annotate(fingerprint, status="crash", level="ALERT", note="ticket 1")
    assert ["ALERT"] == store.health(app="checkout")["level"].to_list()
    store.annotate(fingerprint, status="silenced", level="OK", note="fixed in 1.0.1")
    row = store.pl(
        "select status, level, note from error_groups where fingerprint = ?", [fingerprint]
    ).row(0)
    assert ("silenced", "OK", "fixed in 1.0.1") == row
    assert [(fingerprint, "silenced")] == store.sql(
        "select fingerprint, status from annotations"
    ).fetchall()
    health = store.pl("select level, open_groups from health where app = 'checkout'").row(0)
    assert ("WARN", 0) == health  # still 20 % failed, but no group needs attention


def test_annotations_are_files(tmp_path: Path) -> None:
    """Each annotation is one more Parquet file under <store>/annotations/."""
    store = Store(build_store(tmp_path))
    store.annotate("abc", status="open", level="WARN")
    store.annotate("abc", status="crash", level="ALERT")
    assert 2 == len(list((tmp_path / "annotations").glob("*.parquet")))


def test_empty_store_has_every_view(tmp_path: Path) -> None:
    """An empty store still has every view, each with zero rows."""
    store = Store(str(tmp_path))
    counts = {
        name: store.sql(f"select count(*) from {name}").fetchall()[0][0] for name in VIEW_NAMES
    }
    assert dict.fromkeys(VIEW_NAMES, 0) == counts


def _fingerprints(tmp_path: Path, errors: list[tuple[str, str, str]]) -> list[str]:
    """Write one failed span per (type, message, function) and return their fingerprints."""
    records = []
    for index, (kind, message, function) in enumerate(errors):
        start = 1_767_000_000_000_000 + index * 1_000_000
        error = (kind, message, traceback_text("/app/x.py", function, f"{kind}: {message}"))
        records.append(
            make_span(
                f"trace{index:022d}",
                "job",
                start_us=start,
                duration_us=10,
                status="failed",
                error=error,
                seed=str(index),
            )
        )
    write_spans(open_store(str(tmp_path)), records)
    store = Store(str(tmp_path))
    rows = store.sql(
        "select trace_id, fingerprint from error_occurrences order by trace_id"
    ).fetchall()
    return [fingerprint for _, fingerprint in rows]


def test_fingerprint_normalises_ids(tmp_path: Path) -> None:
    """Numbers, hex, uuids, KSUIDs, quoted strings and paths do not split a group."""
    pairs = [
        ("user 12 has 3.5 credits", "user 4711 has 0.25 credits"),
        ("object at 0x7f3a2b1c", "object at 0xdeadbeef00"),
        ("span 9f86d081884c7d65 missing", "span 2c26b46b68ffc68f missing"),
        (
            "job 123e4567-e89b-12d3-a456-426614174000 died",
            "job 9b2f0c1e-0000-4c4c-8c8c-abcdefabcdef died",
        ),
        ("trace 2OaX4dUWZLqpGDOBOgNEW5QFfCN lost", "trace 0ujtsYcgvSTl8PAuAdqWYSMnLOv lost"),
        ("no key 'alpha' in config", 'no key "beta-2" in config'),
        ("cannot open /var/data/2024/a.csv: denied", "cannot open /tmp/x.json: denied"),
    ]
    errors = [("RuntimeError", message, "work") for pair in pairs for message in pair]
    fingerprints = _fingerprints(tmp_path, errors)
    same = [fingerprints[i] == fingerprints[i + 1] for i in range(0, len(fingerprints), 2)]
    assert [True] * len(pairs) == same
    assert len(pairs) == len(set(fingerprints))


def test_fingerprint_keeps_different_bugs_apart(tmp_path: Path) -> None:
    """Another message, another error type or another code location is another group."""
    errors = [
        ("RuntimeError", "disk full", "save"),
        ("RuntimeError", "disk missing", "save"),
        ("OSError", "disk full", "save"),
        ("RuntimeError", "disk full", "load"),
    ]
    assert 4 == len(set(_fingerprints(tmp_path, errors)))


def test_running_spans_is_empty_when_every_snapshot_finished(store: Store) -> None:
    """The two spans written as started then finished are not running."""
    assert [(0,)] == store.sql("select count(*) from running_spans").fetchall()


def test_redelivered_batch_after_refresh(tmp_path: Path) -> None:
    """A batch written twice (a retried delivery) still counts once after refresh()."""
    location = open_store(str(tmp_path))
    first, second = build_records()
    write_spans(location, first, batch_id="2Ezj1nSwmJCWSbT2FyLYR6PPG9z")
    write_spans(location, second)
    store = Store(str(tmp_path))
    before = store.sql("select (select count(*) from spans), count(*) from span_versions")
    counts = before.fetchall()
    write_spans(location, first, batch_id="2Ezj1nSwmJCWSbT2FyLYR6PPG9z")
    store.refresh()
    after = store.sql("select (select count(*) from spans), count(*) from span_versions")
    assert counts == after.fetchall()


def test_fingerprint_placeholders_are_one_each(tmp_path: Path) -> None:
    """An IP address, a UUID, a hex id, a path with numbers and a quoted string each
    become one placeholder in the normalised message."""
    cases = {
        "reviews service at 10.0.0.3 refused": "reviews service at <ip> refused",
        "connect to 192.168.10.254:5432 failed": "connect to <ip> failed",
        "job 123e4567-e89b-12d3-a456-426614174000 died": "job <uuid> died",
        "span 9f86d081884c7d65 missing": "span <hex> missing",
        "missing export /data/exports/2024-06-01/orders.csv": "missing export <path>",
        "no key 'alpha 2' in config": "no key <str> in config",
    }
    errors = [("RuntimeError", message, "work") for message in cases]
    _fingerprints(tmp_path, errors)
    rows = (
        Store(str(tmp_path))
        .sql("select message, pattern from error_occurrences order by trace_id")
        .fetchall()
    )
    assert cases == dict(rows)
