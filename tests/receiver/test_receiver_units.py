"""Unit tests of the receiver's parts: body parsing, gzip bounds, API keys, traceparent."""

from __future__ import annotations

import gzip
import json
import logging
import time
import zlib
from typing import Any

import fsspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import span_tree
from span_tree._record import FinishedSpan, span_to_json_dict
from span_tree.integrations import remote_parent, trace_headers
from span_tree.receiver import KeyStore, _ingest
from span_tree.receiver._bulk import bulk_records
from span_tree.receiver._ingest import IngestError, gunzip_bounded, parse_row_wise, parse_spans
from span_tree.receiver._typed import decode_body, typed_columns
from span_tree.storage.schema import columns_to_table, python_columns
from span_tree.testing import capture_spans


def make_span(**overrides: Any) -> dict[str, Any]:
    """A minimal valid span record."""
    record: dict[str, Any] = {
        "trace_id": "2ZbWQnIc5sDs9mMCq8kP4nBvYzA",
        "span_id": "0123456789abcdef",
        "name": "work",
        "status": "succeeded",
        "start_time": "2026-01-02T03:04:05Z",
        "end_time": "2026-01-02T03:04:06Z",
    }
    record.update(overrides)
    return record


def body(spans: list[Any], **extra: Any) -> bytes:
    """Encode a request body."""
    return json.dumps({"spans": spans, **extra}).encode()


def test_parse_uses_the_key_namespace_not_the_body() -> None:
    """A span claiming another namespace is stored under the key's namespace."""
    records = parse_spans(body([make_span(namespace="victim")]), namespace="mine")
    assert ["mine"] == [record.namespace for record in records]


def test_body_tags_apply_to_every_span_and_span_tags_win() -> None:
    """Body tags fill in every span's tags; a span's own tag wins on conflict."""
    spans = [make_span(), make_span(span_id="1" * 16, tags={"env": "dev"})]
    records = parse_spans(body(spans, tags={"env": "prod", "region": "eu"}), namespace="n")
    assert [{"env": "prod", "region": "eu"}, {"env": "dev", "region": "eu"}] == [
        dict(record.tags) for record in records
    ]


def test_invalid_span_names_field_and_index() -> None:
    """A bad span is refused with 422 naming its index and field."""
    spans = [make_span(), make_span(), make_span(status="maybe")]
    with pytest.raises(IngestError) as caught:
        parse_spans(body(spans), namespace="n")
    assert (422, 2, "status") == (
        caught.value.status,
        caught.value.detail["index"],
        caught.value.detail["field"],
    )


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (b"{not json", "body"),
        (b"[1, 2]", "body"),
        (b'{"spans": {}}', "spans"),
        (b'{"spans": [], "tags": [1]}', "tags"),
        (b"\xff\xfe", "body"),
    ],
)
def test_malformed_bodies_are_422(payload: bytes, field: str) -> None:
    """Malformed JSON or a wrong body shape is a 422 naming the field."""
    with pytest.raises(IngestError) as caught:
        parse_spans(payload, namespace="n")
    assert (422, field) == (caught.value.status, caught.value.detail["field"])


def test_integers_the_columns_cannot_hold_are_422() -> None:
    """A line number beyond int32 is refused before anything is written."""
    with pytest.raises(IngestError) as caught:
        parse_spans(body([make_span(line=2**40)]), namespace="n")
    assert (422, 0, "line") == (
        caught.value.status,
        caught.value.detail["index"],
        caught.value.detail["field"],
    )


def test_too_many_spans_is_413() -> None:
    """More spans than the limit is a 413."""
    with pytest.raises(IngestError) as caught:
        parse_spans(body([make_span()] * 3), namespace="n", max_spans=2)
    assert 413 == caught.value.status


def test_real_span_records_round_trip() -> None:
    """Records printed by the jsonl sink are accepted unchanged."""
    with capture_spans() as spans, span_tree.span("outer", user=1), span_tree.span("inner"):
        pass
    records = parse_spans(body([span_to_json_dict(s) for s in spans]), namespace="n")
    assert [(s.span_id, s.name) for s in spans] == [(r.span_id, r.name) for r in records]


@pytest.mark.parametrize("inflate", ["zlib-ng", "zlib"])
def test_gunzip_bounded(inflate: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """gzip bodies are decompressed; over the limit is 413; garbage is 422 (with zlib-ng,
    and with the standard zlib it falls back to)."""
    if inflate == "zlib":
        monkeypatch.setattr(_ingest, "_zlib", zlib)
    data = b"x" * 1000
    assert data == gunzip_bounded(gzip.compress(data), limit=1000)
    with pytest.raises(IngestError) as too_big:
        gunzip_bounded(gzip.compress(b"x" * 10_000_000), limit=1000)
    with pytest.raises(IngestError) as garbage:
        gunzip_bounded(b"not gzip at all", limit=1000)
    with pytest.raises(IngestError) as truncated:
        gunzip_bounded(gzip.compress(data)[:-8], limit=1000)
    assert [413, 422, 422] == [
        too_big.value.status,
        garbage.value.status,
        truncated.value.status,
    ]


@pytest.fixture
def keys() -> KeyStore:
    """A key store on a fresh in-memory filesystem."""
    fs = fsspec.filesystem("memory")
    root = f"/keys-test-{time.time_ns()}"
    return KeyStore(fs, root, refresh_seconds=0.0)


def test_key_maps_to_its_namespace(keys: KeyStore) -> None:
    """A created key authenticates as its namespace; others do not."""
    key = keys.create("team-a")
    assert ["team-a", None, None, None] == [
        keys.namespace_of(key),
        keys.namespace_of(key[:-1] + ("x" if key[-1] != "x" else "y")),
        keys.namespace_of("st_unknown_secret"),
        keys.namespace_of(""),
    ]


def test_keys_are_stored_hashed(keys: KeyStore) -> None:
    """The key itself appears nowhere in the store."""
    key = keys.create("team-a")
    stored = b"".join(keys._fs.cat_file(path) for path in keys._fs.find(keys._dir))
    assert key.encode() not in stored
    secret = key.split("_", 2)[2]  # st_<id>_<secret>; the secret may itself hold "_"
    assert secret.encode() not in stored


def test_revoked_key_is_refused_and_listed(keys: KeyStore) -> None:
    """Revoking a key (by its id) makes it fail; list shows it revoked."""
    key = keys.create("team-a")
    other = keys.create("team-b")
    key_id = next(item.key_id for item in keys.list_keys() if item.namespace == "team-a")
    info = keys.revoke(key_id)
    listed = {item.namespace: item.revoked_at is not None for item in keys.list_keys()}
    assert ("team-a", None, "team-b", {"team-a": True, "team-b": False}) == (
        info.namespace,
        keys.namespace_of(key),
        keys.namespace_of(other),
        listed,
    )


@pytest.mark.parametrize("namespace", ["../etc", "", ".hidden", "x" * 129, "shop\n"])
def test_invalid_namespace_is_refused(keys: KeyStore, namespace: str) -> None:
    """A namespace that is not a safe directory name cannot get a key."""
    with pytest.raises(ValueError):
        keys.create(namespace)


def test_trace_headers_round_trip_keeps_the_ksuid() -> None:
    """traceparent + tracestate rebuild exactly the caller's trace id and span id."""
    with span_tree.span("client") as current:
        headers = trace_headers()
    assert (current.trace_id, current.span_id) == remote_parent(headers)
    assert (
        f"00-{span_tree.w3c_trace_id(current.trace_id)}-{current.span_id}-01"
        == (headers["traceparent"])
    )


def test_traceparent_without_tracestate_keeps_the_w3c_id() -> None:
    """A foreign traceparent (no tracestate) gives a KSUID with the same 32-hex id."""
    hex_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    found = remote_parent({"TraceParent": f"00-{hex_id}-00f067aa0ba902b7-01"})
    assert found is not None
    trace_id, parent = found
    assert (hex_id, "00f067aa0ba902b7") == (span_tree.w3c_trace_id(trace_id), parent)


@pytest.mark.parametrize(
    "header",
    [
        "",
        "garbage",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    ],
)
def test_invalid_traceparent_is_ignored(header: str) -> None:
    """Invalid traceparent headers start a new trace instead of failing."""
    assert remote_parent({"traceparent": header}) is None


def test_no_headers_outside_a_span() -> None:
    """Outside any span there is nothing to propagate."""
    assert {} == trace_headers()


# -- the bulk fast path agrees with the row-wise validator ----------------------------------

_values = st.none() | st.booleans() | st.integers(-(2**65), 2**65) | st.floats(allow_nan=False)
_values = (
    _values
    | st.text(max_size=8)
    | st.sampled_from(
        [
            "",
            "2026-01-02T03:04:05Z",
            "2026-01-02T03:04:05.123456Z",
            "2026-01-02T03:04:05.123Z",
            "2026-01-02T03:04:05+02:00",
            "2026-01-02 03:04:05",
            "2026-02-30T03:04:05Z",
            "0999-01-02T03:04:05Z",
            "started",
            "failed",
        ]
    )
)
_json = st.recursive(
    _values,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)
_span_keys = st.sampled_from(
    [
        "trace_id", "span_id", "parent_id", "name", "status", "start_time", "end_time",
        "duration_us", "line", "pid", "seq", "tags", "attributes", "events", "kind", "level",
        "handled_errors", "links", "ref_src", "ref_dest", "written_at", "spantree", "app",
        "task", "error_type",
    ]
)  # fmt: skip
_nested_keys = st.sampled_from(
    ["time", "seq", "level", "logger", "message", "file", "line", "attributes", "type"]
)


def _real_span_dicts() -> list[dict[str, Any]]:
    log = logging.getLogger("bulk.test")
    with capture_spans() as spans, span_tree.span("root", user=1) as root:
        root.set_tags(env="test")
        with span_tree.span("child", n=2):
            log.info("hello %s", "world")
            try:
                raise ValueError("boom")
            except ValueError:
                log.exception("handled")
        span_tree.current_span().add_ref("ref-1", outgoing=True)  # type: ignore[union-attr]
    return [span_to_json_dict(span) for span in spans]


_REAL = _real_span_dicts()


@st.composite
def _bodies(draw: st.DrawFn) -> tuple[list[Any], dict[str, str]]:
    spans = [json.loads(json.dumps(span)) for span in _REAL]
    for _ in range(draw(st.integers(0, 3))):
        span = spans[draw(st.integers(0, len(spans) - 1))]
        key = draw(_span_keys)
        action = draw(st.integers(0, 2))
        if action == 0:
            span.pop(key, None)
        elif action == 1 or not span.get("events"):
            span[key] = draw(_json)
        else:
            events = span["events"]
            usable = isinstance(events, list) and isinstance(events[0], dict)
            nested = events[0] if usable and draw(st.booleans()) else {}
            nested[draw(_nested_keys)] = draw(_json)
            span["events"] = [nested]
    tags = draw(st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=2))
    return spans, tags


@settings(max_examples=400, deadline=None)
@given(body=_bodies())
def test_bulk_path_agrees_with_the_row_wise_validator(
    body: tuple[list[Any], dict[str, str]],
) -> None:
    """Whatever the fast path accepts, the row-wise validator accepts identically."""
    spans, tags = body
    fast = bulk_records(spans, namespace="ns", tags=tags)
    if fast is not None:
        assert parse_row_wise(spans, namespace="ns", tags=tags) == fast


def test_bulk_path_takes_real_bodies() -> None:
    """Bodies printed by the library take the fast path."""
    assert bulk_records(_REAL, namespace="ns", tags={}) is not None


def _typed_columns(spans: list[Any], tags: dict[str, str]) -> list[Any] | None:
    decoded = decode_body(json.dumps({"spans": spans}).encode())
    if decoded is None:
        return None
    return typed_columns(decoded[0], namespace="ns", tags=tags)


def _typed_records(spans: list[Any], tags: dict[str, str]) -> list[Any] | None:
    columns = _typed_columns(spans, tags)
    return None if columns is None else list(zip(*python_columns(columns), strict=True))


@settings(max_examples=400, deadline=None)
@given(body=_bodies())
def test_typed_path_agrees_with_the_row_wise_validator(
    body: tuple[list[Any], dict[str, str]],
) -> None:
    """Whatever the typed (msgspec) path accepts, the row-wise validator accepts identically.

    As records, and as the Arrow table the writer stores (attributes' JSON text included).
    """
    spans, tags = body
    columns = _typed_columns(spans, tags)
    if columns is not None:
        expected = parse_row_wise(spans, namespace="ns", tags=tags)
        typed = list(zip(*python_columns(columns), strict=True))
        assert [tuple(r) for r in expected] == typed
        table = columns_to_table(list(zip(*expected, strict=True)), written_at=1)
        assert table.to_pylist() == columns_to_table(columns, written_at=1).to_pylist()


def test_typed_path_takes_real_bodies() -> None:
    """Bodies printed by the library take the typed path, with the bulk path's columns."""
    assert bulk_records(_REAL, namespace="ns", tags={"env": "x"}) == [
        FinishedSpan._make(row) for row in _typed_records(_REAL, {"env": "x"}) or []
    ]
