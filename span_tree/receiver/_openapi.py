"""The receiver's OpenAPI 3 document (served at ``/openapi.json``)."""

from __future__ import annotations

from typing import Any

_ERROR = {
    "type": "object",
    "properties": {
        "error": {"type": "string"},
        "field": {"type": "string"},
        "index": {"type": "integer"},
        "reason": {"type": "string"},
        "limit": {"type": "integer"},
    },
    "required": ["error"],
}

_SPAN = {
    "type": "object",
    "description": "One span version, as printed by the jsonl sink (span_to_json_dict).",
    "required": ["trace_id", "span_id", "name", "status", "start_time"],
    "properties": {
        "trace_id": {"type": "string", "minLength": 1},
        "span_id": {"type": "string", "minLength": 1},
        "parent_id": {"type": ["string", "null"]},
        "name": {"type": "string", "minLength": 1},
        "kind": {"type": "string"},
        "status": {"enum": ["started", "succeeded", "failed"]},
        "level": {"type": "string"},
        "start_time": {"type": ["string", "integer"], "description": "ISO 8601 or µs"},
        "end_time": {"type": ["string", "integer", "null"]},
        "duration_us": {"type": ["integer", "null"]},
        "tags": {"type": "object", "additionalProperties": {"type": "string"}},
        "attributes": {"type": "object"},
        "events": {"type": "array", "items": {"type": "object"}},
        "handled_errors": {"type": "array", "items": {"type": "object"}},
    },
}


def _response(description: str, schema: dict[str, Any] = _ERROR) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def openapi_document(max_body: int, max_spans: int) -> dict[str, Any]:
    """Return the OpenAPI document describing this receiver's limits."""
    key: list[dict[str, list[str]]] = [{"apiKey": []}]
    return {
        "openapi": "3.1.0",
        "info": {"title": "span-tree receiver", "version": "1"},
        "components": {
            "securitySchemes": {"apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}},
            "schemas": {"Span": _SPAN, "Error": _ERROR},
        },
        "paths": {
            "/v1/spans": {
                "post": {
                    "summary": "Append span versions to the key's namespace (all or nothing).",
                    "security": key,
                    "parameters": [
                        {
                            "name": "Content-Encoding",
                            "in": "header",
                            "schema": {"enum": ["identity", "gzip"]},
                        }
                    ],
                    "requestBody": {
                        "required": True,
                        "description": f"At most {max_body} bytes (also once decompressed).",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["spans"],
                                    "properties": {
                                        "batch": {
                                            "type": "string",
                                            "pattern": "^[0-9A-Za-z]{27}$",
                                            "description": (
                                                "The batch's id (a KSUID the client chose"
                                                " once): a resend of the same body with"
                                                " the same id adds no rows."
                                            ),
                                        },
                                        "tags": {
                                            "type": "object",
                                            "additionalProperties": {"type": "string"},
                                        },
                                        "spans": {
                                            "type": "array",
                                            "maxItems": max_spans,
                                            "items": {"$ref": "#/components/schemas/Span"},
                                        },
                                    },
                                }
                            }
                        },
                    },
                    "responses": {
                        "202": _response(
                            "Durably written.",
                            {"type": "object", "properties": {"accepted": {"type": "integer"}}},
                        ),
                        "401": _response("Missing or invalid API key."),
                        "413": _response("Body or span count over the limit."),
                        "415": _response("Unsupported Content-Encoding."),
                        "422": _response("Malformed JSON or an invalid span (field, index)."),
                        "503": _response("The store could not be written; retry later."),
                    },
                }
            },
            "/v1/traces": _otlp_path("spans", max_body, max_spans, key),
            "/v1/logs": _otlp_path("log records", max_body, max_spans, key),
            "/v1/health": {
                "get": {
                    "summary": "Liveness (no key needed).",
                    "responses": {"200": _response("Alive.", {"type": "object"})},
                }
            },
            "/v1/status": {
                "get": {
                    "summary": "The health view (OK / WARN / ALERT per app) of the key namespace.",
                    "security": key,
                    "parameters": [
                        {"name": "namespace", "in": "query", "schema": {"type": "string"}}
                    ],
                    "responses": {
                        "200": _response("Health rows.", {"type": "object"}),
                        "401": _response("Missing or invalid API key."),
                        "403": _response("Another namespace than the key's."),
                    },
                }
            },
        },
    }


def _otlp_path(
    what: str, max_body: int, max_spans: int, key: list[dict[str, list[str]]]
) -> dict[str, Any]:
    """An OTLP/HTTP export endpoint (span_tree.receiver._otlp): the OTel specification's
    request and answers; the key may also come as ``Authorization: Bearer``."""
    binary = {"schema": {"type": "string", "format": "binary"}}
    status = {"application/x-protobuf": binary, "application/json": {"schema": _OTLP_STATUS}}
    answers = {
        "400": "The body cannot be decoded (protobuf, JSON or gzip).",
        "401": "Missing or invalid API key.",
        "413": f"Body over {max_body} bytes (as sent or unzipped), or over {max_spans} {what}.",
        "415": "Content-Type is not application/x-protobuf or application/json, or the"
        " Content-Encoding is not gzip.",
        "429": "Too many requests waiting; retry after Retry-After seconds.",
        "501": "The span-tree[otel] extra is not installed.",
        "503": "The store could not be written; retry after Retry-After seconds.",
    }
    return {
        "post": {
            "summary": f"OTLP/HTTP export of {what} into the key's namespace.",
            "security": key,
            "requestBody": {
                "required": True,
                "content": {"application/x-protobuf": binary, "application/json": {}},
            },
            "responses": {
                "200": {
                    "description": f"Written; {what} that cannot be stored are counted in"
                    " partial_success with the reasons.",
                    "content": {"application/x-protobuf": binary, "application/json": {}},
                },
                **{
                    code: {"description": text, "content": status} for code, text in answers.items()
                },
            },
        }
    }


_OTLP_STATUS = {
    "type": "object",
    "description": "google.rpc.Status",
    "properties": {"code": {"type": "integer"}, "message": {"type": "string"}},
}
