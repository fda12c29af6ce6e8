"""The OTLP wire format (``opentelemetry-proto``), imported with one clear error when missing."""

from __future__ import annotations

from types import ModuleType
from typing import Any

INSTALL_HINT = "OpenTelemetry support needs the 'otel' extra: pip install 'span-tree[otel]'"


class OtelNotInstalled(ImportError):
    """``opentelemetry-proto`` / ``protobuf`` (the ``span-tree[otel]`` extra) is missing."""


def _import(name: str) -> ModuleType:
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError as error:
        raise OtelNotInstalled(f"{INSTALL_HINT} ({error})") from error


def trace_pb2() -> Any:
    """``opentelemetry.proto.trace.v1.trace_pb2``."""
    return _import("opentelemetry.proto.trace.v1.trace_pb2")


def common_pb2() -> Any:
    """``opentelemetry.proto.common.v1.common_pb2``."""
    return _import("opentelemetry.proto.common.v1.common_pb2")


def trace_service_pb2() -> Any:
    """``opentelemetry.proto.collector.trace.v1.trace_service_pb2``."""
    return _import("opentelemetry.proto.collector.trace.v1.trace_service_pb2")


def logs_service_pb2() -> Any:
    """``opentelemetry.proto.collector.logs.v1.logs_service_pb2``."""
    return _import("opentelemetry.proto.collector.logs.v1.logs_service_pb2")


def json_format() -> Any:
    """``google.protobuf.json_format`` (OTLP/JSON bodies)."""
    return _import("google.protobuf.json_format")
