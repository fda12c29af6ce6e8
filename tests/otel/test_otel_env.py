"""The OTEL_EXPORTER_OTLP_* variables of the OTLP sink and of configure()."""

from __future__ import annotations

import pytest

import span_tree
from span_tree.otel import OtlpSink
from span_tree.otel._env import env_headers, otlp_from_environment, traces_url

VARIABLES = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    "OTEL_EXPORTER_OTLP_TIMEOUT",
    "OTEL_EXPORTER_OTLP_COMPRESSION",
    "OTEL_TRACES_EXPORTER",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No OTel variable leaks in from the machine."""
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_endpoint_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    """Base URLs get /v1/traces; the signal-specific variable is used as is and wins."""
    assert "http://localhost:4318/v1/traces" == traces_url()
    assert "http://c:4318/v1/traces" == traces_url("http://c:4318/")
    assert "http://c:4318/v1/traces" == traces_url("http://c:4318/v1/traces")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "https://otel.example:4318")
    assert "https://otel.example:4318/v1/traces" == traces_url()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "https://t.example/custom")
    assert "https://t.example/custom" == traces_url()


def test_headers_are_url_decoded_pairs(monkeypatch: pytest.MonkeyPatch) -> None:
    """k=v pairs, URL-encoded values decoded; the traces variable wins over the general one."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=st_a,team=pay%20ments, bad")
    assert {"x-api-key": "st_a", "team": "pay ments"} == env_headers()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "x-honeycomb-team=abc")
    assert {"x-honeycomb-team": "abc"} == env_headers()


def test_sink_takes_timeout_compression_and_headers_from_the_variables(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    """Timeout is milliseconds (OTel spec); compression none leaves Content-Encoding out."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:18599")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=st_k")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "2500")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "none")
    sink = OtlpSink(spool_dir=str(tmp_path))
    assert ("http://127.0.0.1:18599/v1/traces", 2.5) == (sink.url, sink._timeout.read)
    assert {"x-api-key": "st_k", "Content-Type": "application/x-protobuf"} == sink._headers
    sink.shutdown()


def test_variables_turn_the_sink_on_unless_another_exporter_is_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    """An endpoint variable enables OTLP export; OTEL_TRACES_EXPORTER=none turns it off."""
    assert not otlp_from_environment()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:18599")
    monkeypatch.setenv("SPANTREE_SPOOL_DIR", str(tmp_path))
    span_tree.configure(console=False, jsonl=False, store=None)
    with span_tree.span("starts the worker"):
        pass
    span_tree.flush(5)
    assert ["OtlpSink"] == [sink["name"] for sink in span_tree.stats()["sinks"]]
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
    assert not otlp_from_environment()
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console,otlp")
    assert otlp_from_environment()
