"""Sensitive keys are scrubbed before any sink sees them."""

from __future__ import annotations

import logging

import pytest

import span_tree
from span_tree import FinishedSpan
from span_tree._sanitize import SCRUBBED
from span_tree.sinks.memory import MemorySink
from span_tree.testing import capture_spans


def only(sink: MemorySink) -> FinishedSpan:
    """Flush and return the one recorded span."""
    assert span_tree.flush(5.0)
    assert 1 == len(sink.spans)
    return sink.spans[0]


def test_sensitive_attribute_keys_are_scrubbed(memory_sink: MemorySink) -> None:
    """Password, token, secret, authorization, api_key, cookie values never reach a sink."""
    with span_tree.span(
        "login",
        user="ann",
        password="hunter2",
        Authorization="Bearer abc",
        api_key="k",
        session_cookie="c",
        refresh_token="t",
        client_secret="s",
    ) as opened:
        opened.set_attribute("DB_PASSWORD", "p")
    attributes = dict(only(memory_sink).attributes)
    assert "ann" == attributes.pop("user")
    assert {SCRUBBED} == set(attributes.values())
    assert 7 == len(attributes)


def test_nested_sensitive_keys_are_scrubbed(memory_sink: MemorySink) -> None:
    """Sensitive keys inside nested mappings and lists are scrubbed as well."""
    with span_tree.span(
        "nested", config={"db": {"password": "p", "host": "h"}}, items=[{"token": 1}]
    ):
        pass
    attributes = only(memory_sink).attributes
    assert {"db": {"password": SCRUBBED, "host": "h"}} == attributes["config"]
    assert [{"token": SCRUBBED}] == attributes["items"]


def test_sensitive_tags_are_scrubbed(memory_sink: MemorySink) -> None:
    """Trace tags with sensitive keys are scrubbed on every span row."""
    with span_tree.span("tags"):
        span_tree.set_tags(env="prod", api_key="k-1")
    assert {"env": "prod", "api_key": SCRUBBED} == dict(only(memory_sink).tags)


def test_sensitive_event_extras_are_scrubbed(
    memory_sink: MemorySink, caplog: pytest.LogCaptureFixture
) -> None:
    """`extra=` values of log records with sensitive keys are scrubbed in events."""
    caplog.set_level(logging.INFO)
    with span_tree.span("events"):
        logging.getLogger("auth").info("login", extra={"user": "ann", "token": "t-1"})
    event = only(memory_sink).events[0]
    assert {"user": "ann", "token": SCRUBBED} == dict(event.attributes)


def test_capture_spans_sees_scrubbed_values(memory_sink: MemorySink) -> None:
    """Test-mode listeners receive the scrubbed record too."""
    with capture_spans() as spans, span_tree.span("listened", password="x"):
        pass
    assert {"password": SCRUBBED} == dict(spans[0].attributes)


def test_started_snapshot_is_scrubbed(memory_sink: MemorySink) -> None:
    """The `started` version of a child outliving its root is scrubbed as well."""
    root = span_tree.span("root")
    root.__enter__()
    child = span_tree.span("child", secret="s")
    child.__enter__()
    root.end()
    child.__exit__(None, None, None)
    root.__exit__(None, None, None)
    span_tree.flush(5.0)
    children = [span for span in memory_sink.spans if span.name == "child"]
    assert ["started", "succeeded"] == [span.status for span in children]
    assert [{"secret": SCRUBBED}] * 2 == [dict(span.attributes) for span in children]


def test_custom_scrub_keys(memory_sink: MemorySink) -> None:
    """`configure(scrub_keys=[...])` replaces the default list (case-insensitive)."""
    sink = MemorySink()
    span_tree.configure(
        sinks=[sink], console=False, jsonl=False, store=None, scrub_keys=["ssn", "iban"]
    )
    with span_tree.span("custom", SSN="123", customer_iban="DE00", password="kept"):
        pass
    assert {"SSN": SCRUBBED, "customer_iban": SCRUBBED, "password": "kept"} == dict(
        only(sink).attributes
    )
