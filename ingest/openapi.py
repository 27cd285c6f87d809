"""The receiver's HTTP contract as an OpenAPI 3.1 document (also committed as docs/openapi.json)."""

from __future__ import annotations

from typing import Any, Final

_ERROR: Final = {
    "type": "object",
    "properties": {
        "error": {"type": "string"},
        "reason": {"type": "string"},
        "detail": {"type": "string"},
        "limit": {"type": "string"},
    },
    "required": ["error"],
}


def _answer(description: str, schema: str = "Error") -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
    }


def _callback(kind: str, summary: str) -> dict[str, Any]:
    return {
        "post": {
            "operationId": f"post_{kind}",
            "summary": summary,
            "description": (
                "The platform posts one JSON object. 200 means the exact bytes are durable "
                "(in Kafka, or in the receiver's fsynced spool while Kafka is unavailable). "
                "`Content-Encoding: gzip` is accepted."
            ),
            "parameters": [
                {
                    "name": "companycode",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string"},
                },
                {
                    "name": "key",
                    "in": "query",
                    "required": True,
                    "description": "The tenant's callback_key",
                    "schema": {"type": "string"},
                },
            ],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"type": "object"}}},
            },
            "responses": {
                "200": _answer("Accepted and durable", "Ok"),
                "400": _answer(
                    "Not a valid callback (the bytes are kept in callstream.deadletter), "
                    "or a malformed X-Forwarded-For from a trusted proxy"
                ),
                "401": _answer("No key given"),
                "403": _answer("Unknown tenant, wrong key, or address not allowed"),
                "408": _answer("The body did not arrive within CALLSTREAM_INGEST_BODY_TIMEOUT"),
                "413": _answer("Body (or its inflated form) over the limit its answer names"),
                "415": _answer("A Content-Encoding other than gzip, deflate or identity; kept"),
                "503": {
                    "description": "Busy, shutting down, or cannot store events now; retry later",
                    "headers": {"Retry-After": {"schema": {"type": "integer"}}},
                },
            },
        }
    }


def _probe(operation: str, description: str) -> dict[str, Any]:
    return {
        "get": {
            "operationId": operation,
            "summary": description,
            "responses": {
                "200": {"description": "Yes", "content": {"application/json": {}}},
                "503": {"description": "No", "content": {"application/json": {}}},
            },
        }
    }


OPENAPI: Final[dict[str, Any]] = {
    "openapi": "3.1.0",
    "info": {
        "title": "callstream ingest",
        "version": "1",
        "description": (
            "Receives the call-centre platform's callbacks and makes them durable in Kafka."
        ),
    },
    "paths": {
        "/callbacks/{companycode}/callstate": _callback(
            "callstate", "Extension call-state callback"
        ),
        "/callbacks/{companycode}/cdr": _callback("cdr", "Call record (CDR) callback"),
        "/healthz": _probe("healthz", "The process is alive"),
        "/readyz": _probe("readyz", "Events can be made durable (Kafka or spool)"),
        "/metrics": {
            "get": {
                "operationId": "metrics",
                "summary": "Prometheus metrics",
                "responses": {"200": {"description": "Metrics", "content": {"text/plain": {}}}},
            }
        },
        "/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This document",
                "responses": {
                    "200": {"description": "OpenAPI", "content": {"application/json": {}}}
                },
            }
        },
    },
    "components": {
        "schemas": {
            "Ok": {
                "type": "object",
                "properties": {"status": {"const": "ok"}},
                "required": ["status"],
            },
            "Error": _ERROR,
        }
    },
}


if __name__ == "__main__":
    import json
    import sys

    json.dump(OPENAPI, sys.stdout, indent=2)
    sys.stdout.write("\n")
