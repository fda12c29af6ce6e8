"""Units of the HTTP integrations: trace context from foreign callers."""

from __future__ import annotations

from pathlib import Path

import span_tree
from span_tree.integrations import remote_parent


def test_foreign_traceparent_maps_to_the_deterministic_ksuid() -> None:
    """A traceparent without tracestate continues trace_id_from_w3c(hex), whatever the time."""
    hex_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    header = {"traceparent": f"00-{hex_id}-00f067aa0ba902b7-01"}
    expected = (span_tree.trace_id_from_w3c(hex_id), "00f067aa0ba902b7")
    assert expected == remote_parent(header)
    assert expected == remote_parent(header)


def test_tracestate_of_another_trace_is_not_trusted() -> None:
    """A spantree tracestate whose payload differs from traceparent's id falls back to the map."""
    hex_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    other = span_tree.new_trace_id()
    headers = {
        "traceparent": f"00-{hex_id}-00f067aa0ba902b7-01",
        "tracestate": f"vendor=x,spantree={other}",
    }
    assert (span_tree.trace_id_from_w3c(hex_id), "00f067aa0ba902b7") == remote_parent(headers)


def test_store_trace_by_w3c_id_finds_every_part_of_a_foreign_trace(tmp_path: Path) -> None:
    """Two parts continued from one foreign traceparent are one stored trace, found by hex."""
    from span_tree.analytics import Store

    span_tree.configure(store=str(tmp_path), console=False, jsonl=False, schedule_delay=0.05)
    hex_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    parent = remote_parent({"traceparent": f"00-{hex_id}-00f067aa0ba902b7-01"})
    for name in ("first request", "second request"):
        with (
            span_tree.Span(name, kind="server", remote_parent=parent),
            span_tree.span(f"{name} work"),
        ):
            pass
    assert span_tree.flush(10)
    with Store(str(tmp_path)) as store:
        names = sorted(span.name for span in store.trace(hex_id))
    assert [
        "first request",
        "first request work",
        "second request",
        "second request work",
    ] == names
