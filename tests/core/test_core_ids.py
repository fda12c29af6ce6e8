"""Trace ids (KSUID), their W3C form, and span ids."""

from __future__ import annotations

import re
import time

import pytest

import span_tree
from span_tree._ids import trace_id_timestamp


def test_trace_id_is_a_27_char_ksuid() -> None:
    """A new trace id is 27 base62 characters."""
    trace_id = span_tree.new_trace_id()
    assert re.fullmatch(r"[0-9A-Za-z]{27}", trace_id)


def test_trace_ids_sort_by_time() -> None:
    """Trace ids created a second apart sort in creation order."""
    first = span_tree.new_trace_id()
    time.sleep(1.05)
    second = span_tree.new_trace_id()
    assert sorted([second, first]) == [first, second]
    assert trace_id_timestamp(first) < trace_id_timestamp(second)


def test_trace_id_timestamp_is_now() -> None:
    """The KSUID's timestamp is the creation time (to the second)."""
    before = int(time.time())
    stamp = trace_id_timestamp(span_tree.new_trace_id())
    assert before <= stamp <= time.time() + 1


def test_trace_ids_are_unique() -> None:
    """Many trace ids are all distinct."""
    ids = {span_tree.new_trace_id() for _ in range(10_000)}
    assert 10_000 == len(ids)


def test_w3c_trace_id_is_32_hex_and_round_trips() -> None:
    """`w3c_trace_id` gives 32 lower hex chars; `trace_id_from_w3c` rebuilds the KSUID."""
    trace_id = span_tree.new_trace_id()
    hex_id = span_tree.w3c_trace_id(trace_id)
    assert re.fullmatch(r"[0-9a-f]{32}", hex_id)
    rebuilt = span_tree.trace_id_from_w3c(hex_id, trace_id_timestamp(trace_id))
    assert trace_id == rebuilt
    assert hex_id == span_tree.w3c_trace_id(rebuilt)


def test_w3c_ids_differ_per_trace() -> None:
    """Two traces have different W3C ids."""
    first, second = span_tree.new_trace_id(), span_tree.new_trace_id()
    assert span_tree.w3c_trace_id(first) != span_tree.w3c_trace_id(second)


def test_foreign_w3c_id_gets_a_ksuid_with_the_same_payload() -> None:
    """A W3C id from elsewhere becomes a KSUID whose W3C form is that id."""
    foreign = "4bf92f3577b34da6a3ce929d0e0e4736"
    trace_id = span_tree.trace_id_from_w3c(foreign, time.time())
    assert 27 == len(trace_id)
    assert foreign == span_tree.w3c_trace_id(trace_id)


def test_foreign_w3c_id_maps_to_one_ksuid_with_timestamp_field_zero() -> None:
    """A foreign W3C id maps to the same KSUID every time: timestamp field 0, id as payload."""
    from cyksuid.v2 import parse

    foreign = "4bf92f3577b34da6a3ce929d0e0e4736"
    first = span_tree.trace_id_from_w3c(foreign)
    second = span_tree.trace_id_from_w3c(foreign)
    assert (first, bytes(4) + bytes.fromhex(foreign)) == (second, bytes(parse(first).bytes))
    assert foreign == span_tree.w3c_trace_id(first)


@pytest.mark.parametrize("bad", ["", "short", "x" * 27 + "y", "!" * 27])
def test_w3c_trace_id_rejects_non_ksuid(bad: str) -> None:
    """A string that is not a KSUID gives a clear ValueError."""
    with pytest.raises(ValueError, match="not a KSUID"):
        span_tree.w3c_trace_id(bad)


@pytest.mark.parametrize("bad", ["", "abc", "G" * 32, "4BF92F3577B34DA6A3CE929D0E0E4736"])
def test_trace_id_from_w3c_rejects_bad_hex(bad: str) -> None:
    """A string that is not 32 lower-case hex chars gives a clear ValueError."""
    with pytest.raises(ValueError, match="32-hex"):
        span_tree.trace_id_from_w3c(bad, time.time())


def test_span_id_is_16_hex() -> None:
    """Span ids are 16 lower-case hex characters and distinct."""
    ids = {span_tree.new_span_id() for _ in range(1_000)}
    assert 1_000 == len(ids)
    assert all(re.fullmatch(r"[0-9a-f]{16}", span_id) for span_id in ids)
