"""Sensitive keys are scrubbed before any sink sees them."""

from __future__ import annotations

import dataclasses
import json
import logging
import types

import pytest

import span_tree
from span_tree import FinishedSpan
from span_tree._record import span_to_json_dict
from span_tree._sanitize import (
    MAX_MESSAGE_CHARS,
    MAX_NAME_CHARS,
    MAX_TEXT_CHARS,
    MAX_TRACEBACK_CHARS,
    SCRUBBED,
    ScrubbingOptions,
    ScrubMatch,
)
from span_tree.sinks.memory import MemorySink
from span_tree.testing import capture_spans


def app_logger() -> logging.Logger:
    """A logger of the application's; enabled again if an earlier test's dictConfig
    disabled existing loggers."""
    logger = logging.getLogger("scrub_tests.app")
    logger.disabled = False
    return logger


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


# -- issue 10: secrets inside objects, pairs, deep values and text ------------------------


@dataclasses.dataclass
class DbConfig:
    """A settings object stored as its repr."""

    host: str
    password: str


class Client:
    """A plain object with a ``__dict__`` holding a key."""

    def __init__(self) -> None:
        self.url = "https://api.example.com"
        self.api_key = "sk-live-plain-object-key"


@pytest.mark.parametrize(
    ("value", "secret"),
    [
        (DbConfig("db", "hunter2-dataclass"), "hunter2-dataclass"),
        (types.SimpleNamespace(user="u", token="tok-namespace"), "tok-namespace"),
        (Client(), "sk-live-plain-object-key"),
        ([("Authorization", "Basic cGxhaW4="), ("Accept", "json")], "cGxhaW4="),
        ({"a": {"b": {"c": {"d": {"e": {"password": "deep-secret"}}}}}}, "deep-secret"),
        ([[[[[{"passphrase": "deep-list-secret"}]]]]], "deep-list-secret"),
    ],
)
def test_secrets_inside_objects_pairs_and_deep_values_are_scrubbed(
    memory_sink: MemorySink, value: object, secret: str
) -> None:
    """Objects stored as repr, lists of pairs and values below the depth limit keep no secret."""
    with span_tree.span("objects", value=value):
        pass
    stored = json.dumps(dict(only(memory_sink).attributes))
    assert secret not in stored
    assert SCRUBBED in stored


@pytest.mark.parametrize(
    "key", ["auth", "pwd", "passphrase", "private", "bearer", "credential", "session_id", "X-Auth"]
)
def test_more_sensitive_keys_are_scrubbed(memory_sink: MemorySink, key: str) -> None:
    """The keys named in issue 10 are sensitive by default."""
    with span_tree.span("keys") as opened:
        opened.set_attributes(**{key: "v-1", "author": "Ann"})
    assert {key: SCRUBBED, "author": "Ann"} == dict(only(memory_sink).attributes)


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("connecting to postgres://app:pg-hunter2@db:5432/main", "pg-hunter2"),
        ("GET https://api.example.com/v1/items?token=tk-12345&page=2", "tk-12345"),
        ("fetch /data?api_key=ak-98765", "ak-98765"),
        ("sent Authorization: Bearer eyJabc.def-ghi", "eyJabc.def-ghi"),
        ("dsn host=db user=app password=libpq-secret dbname=x", "libpq-secret"),
        ("config {'secret': 'in-a-repr'} loaded", "in-a-repr"),
        ("aws key AKIAIOSFODNN7EXAMPLE in use", "AKIAIOSFODNN7EXAMPLE"),
    ],
)
def test_secret_looking_text_is_scrubbed_everywhere(
    memory_sink: MemorySink, caplog: pytest.LogCaptureFixture, text: str, secret: str
) -> None:
    """In a log message, an exception message, its traceback, a name, a tag and an attribute."""
    caplog.set_level(logging.INFO)
    with pytest.raises(RuntimeError), span_tree.span(f"job {text}", note=text) as opened:
        opened.set_tags(origin=text)
        app_logger().info(text)
        try:
            raise ValueError(text)
        except ValueError:
            app_logger().exception("handled")
        raise RuntimeError(text)
    record = only(memory_sink)
    stored = json.dumps(span_to_json_dict(record))
    assert secret not in stored
    assert SCRUBBED in record.events[0].message
    assert SCRUBBED in (record.error_message or "") and SCRUBBED in (record.error_traceback or "")
    assert SCRUBBED in record.handled_errors[0].traceback


def test_ordinary_text_is_left_alone(memory_sink: MemorySink) -> None:
    """Text without anything secret-looking is stored unchanged."""
    text = "processed 12 items for author Ann at https://example.com/a?page=2 in 3 ms"
    with span_tree.span("plain", note=text):
        pass
    assert {"note": text} == dict(only(memory_sink).attributes)


def test_scrub_callback_and_extra_patterns(memory_sink: MemorySink) -> None:
    """scrub=ScrubbingOptions(...): more key and value patterns; a callback may keep a match."""
    sink = MemorySink()
    seen: list[ScrubMatch] = []

    def keep_session_ids(match: ScrubMatch) -> object:
        seen.append(match)
        return match.value if match.path == ("session_id",) else None

    span_tree.configure(
        sinks=[sink],
        console=False,
        jsonl=False,
        store=None,
        scrub=ScrubbingOptions(
            extra_patterns=["iban"],
            extra_value_patterns=[r"DE\d{20}"],
            callback=keep_session_ids,
        ),
    )
    with span_tree.span(
        "custom", session_id="s-1", customer_iban="x", note="to DE89370400440532013000"
    ):
        pass
    assert {"session_id": "s-1", "customer_iban": SCRUBBED, "note": f"to {SCRUBBED}"} == dict(
        only(sink).attributes
    )
    assert ("session_id",) in [match.path for match in seen]


def test_scrub_false_turns_scrubbing_off(memory_sink: MemorySink) -> None:
    """configure(scrub=False) stores values as given (for tests of the scrubbing itself)."""
    sink = MemorySink()
    span_tree.configure(sinks=[sink], console=False, jsonl=False, store=None, scrub=False)
    with span_tree.span("raw", password="p", note="token=abc"):
        pass
    assert {"password": "p", "note": "token=abc"} == dict(only(sink).attributes)


def test_long_names_and_tracebacks_are_bounded(memory_sink: MemorySink) -> None:
    """A 10 MB span name and a 10 MB exception message are stored bounded, with a marker."""
    with pytest.raises(ValueError), span_tree.span("n" * 10_000_000):
        raise ValueError("e" * 10_000_000)
    record = only(memory_sink)
    assert len(record.name) < MAX_NAME_CHARS + 50 and "…[truncated" in record.name
    assert len(record.error_traceback or "") < MAX_TRACEBACK_CHARS + 50
    assert len(record.error_message or "") < MAX_TEXT_CHARS + 50


def test_long_log_messages_are_bounded(
    memory_sink: MemorySink, caplog: pytest.LogCaptureFixture
) -> None:
    """A log message beyond MAX_MESSAGE_CHARS is cut with a marker."""
    caplog.set_level(logging.INFO)
    with span_tree.span("logs"):
        app_logger().info("m" * (MAX_MESSAGE_CHARS + 10))
    message = only(memory_sink).events[0].message
    assert message.endswith("…[truncated 10 chars]")


def test_the_default_key_list_means_the_default_rule_everywhere() -> None:
    """scrub_pattern(DEFAULT_SCRUB_KEYS) (the OTLP mapping's) is the core's default rule."""
    from span_tree._sanitize import DEFAULT_KEY_PATTERN, DEFAULT_SCRUB_KEYS, scrub_pattern

    pattern = scrub_pattern(DEFAULT_SCRUB_KEYS)
    assert DEFAULT_KEY_PATTERN is pattern
    assert (None, True) == (pattern.search("author"), bool(pattern.search("x-auth-token")))


def test_a_message_repeated_across_a_batch_is_scrubbed_in_every_span(
    memory_sink: MemorySink, caplog: pytest.LogCaptureFixture
) -> None:
    """One secret-looking log line in many spans (scrubbed once per batch) is scrubbed in each,
    next to events with extras, plain ones and a message given as another object."""
    caplog.set_level(logging.INFO)
    line = "GET /data?token=tk-12345"
    for index in range(5):
        with span_tree.span(f"repeat {index}") as opened:
            app_logger().info(line)
            app_logger().info("plain %d", index, extra={"password": "pw"})
            opened.add_event(["token=tk-12345"])  # type: ignore[arg-type]
    assert span_tree.flush(5.0)
    expected = (f"GET /data?token={SCRUBBED}", "plain {}", f"['token={SCRUBBED}']")
    assert [[expected[0], expected[1].format(index), expected[2]] for index in range(5)] == [
        [event.message for event in record.events] for record in memory_sink.spans
    ]
    assert [{}, {"password": SCRUBBED}, {}] * 5 == [
        dict(event.attributes) for record in memory_sink.spans for event in record.events
    ]


def test_a_scrub_callback_sees_every_occurrence_of_a_repeated_message(
    memory_sink: MemorySink, caplog: pytest.LogCaptureFixture
) -> None:
    """With a callback, a log line repeated across spans is offered once per event."""
    caplog.set_level(logging.INFO)
    sink = MemorySink()
    seen: list[ScrubMatch] = []

    def keep_nothing(match: ScrubMatch) -> object:
        seen.append(match)
        return None

    span_tree.configure(
        sinks=[sink], console=False, jsonl=False, store=None,
        scrub=ScrubbingOptions(callback=keep_nothing),
    )  # fmt: skip
    for _ in range(3):
        with span_tree.span("repeat"):
            app_logger().info("GET /data?token=tk-12345")
    assert span_tree.flush(5.0)
    assert [f"GET /data?token={SCRUBBED}"] * 3 == [r.events[0].message for r in sink.spans]
    assert 3 == sum(1 for match in seen if match.path == ("events", "message"))


def test_equal_messages_made_by_separate_calls_are_each_stored(
    memory_sink: MemorySink, caplog: pytest.LogCaptureFixture
) -> None:
    """Equal log lines formatted by separate calls (equal texts, not one object) are kept
    as they are, or scrubbed, in every span of the batch."""
    caplog.set_level(logging.INFO)
    for _ in range(4):
        with span_tree.span("formatted"):
            app_logger().info("user %s logged in", "ann")
            app_logger().info("GET /data?%s=%s", "token", "tk-12345")
    assert span_tree.flush(5.0)
    expected = ["user ann logged in", f"GET /data?token={SCRUBBED}"]
    assert [expected] * 4 == [[e.message for e in r.events] for r in memory_sink.spans]
