"""The ``OTEL_EXPORTER_OTLP_*`` variables of the OTLP sink (standard library only:
``configure()`` reads them at start-up without loading the sink)."""

from __future__ import annotations

import os
import urllib.parse

TRACES_PATH = "/v1/traces"
DEFAULT_ENDPOINT = "http://localhost:4318"


def env_value(name: str) -> str | None:
    """``OTEL_EXPORTER_OTLP_TRACES_<name>``, else ``OTEL_EXPORTER_OTLP_<name>`` (None: unset)."""
    value = os.environ.get(f"OTEL_EXPORTER_OTLP_TRACES_{name}") or os.environ.get(
        f"OTEL_EXPORTER_OTLP_{name}"
    )
    return value.strip() if value and value.strip() else None


def traces_url(endpoint: str | None = None) -> str:
    """The ``/v1/traces`` URL: of ``endpoint`` (base or full URL), else of the variables."""
    if endpoint is None:
        full = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
        if full:
            return full  # the signal-specific variable is used as is (OTel spec)
        endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip() or DEFAULT_ENDPOINT
    endpoint = endpoint.rstrip("/")
    return endpoint if endpoint.endswith(TRACES_PATH) else endpoint + TRACES_PATH


def env_headers() -> dict[str, str]:
    """``OTEL_EXPORTER_OTLP_(TRACES_)HEADERS`` as a dict (``k=v`` pairs, URL-decoded)."""
    headers: dict[str, str] = {}
    for item in (env_value("HEADERS") or "").split(","):
        key, sep, value = item.partition("=")
        if sep and key.strip():
            headers[urllib.parse.unquote(key.strip())] = urllib.parse.unquote(value.strip())
    return headers


def otlp_from_environment() -> bool:
    """Whether the OTel variables ask for OTLP export of traces (an endpoint is set and
    ``OTEL_TRACES_EXPORTER``, if set, names ``otlp``)."""
    if not (
        os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
        or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    ):
        return False
    exporters = os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    return not exporters or "otlp" in exporters.split(",")
