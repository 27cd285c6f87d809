"""The AsyncAPI document of every callstream topic, generated from the code.

`python -m common.asyncapi > docs/asyncapi.json` rewrites the committed copy; a unit test
fails when it drifts.
"""

from __future__ import annotations

import sys
from typing import Any, Final

import msgspec

from common.topics import Header, Topics

_RAW_HEADERS: Final = {
    Header.TENANT: "the platform company code the callback was posted for",
    Header.KIND: "`callstate` or `cdr`",
    Header.RECEIVED_AT: "when the receiver accepted it, epoch milliseconds (decimal text)",
    Header.SOURCE: "the client address the callback came from",
    Header.CONTENT_TYPE: "the Content-Type it was posted with",
    Header.EVENT_ID: "unique per accepted callback: the receiver's id for it",
    Header.SCHEMA_VERSION: "version of these headers and of the envelope (1)",
}
_DLQ_HEADERS: Final = {
    Header.DLQ_REASON: "why, as a short stable word (for example `invalid_json`)",
    Header.DLQ_DETAIL: "why, for people",
    Header.DLQ_SERVICE: "the service that gave up on it (`ingest`, `enrich`, `recordings`)",
    Header.DLQ_SOURCE_TOPIC: "where it should have gone (replay puts it back there)",
    Header.DLQ_SOURCE_PARTITION: "source partition, when a consumer dead-lettered it",
    Header.DLQ_SOURCE_OFFSET: "source offset, when a consumer dead-lettered it",
    Header.DLQ_ATTEMPTS: "how many times it was tried",
}
_REPLAY_HEADERS: Final = {
    "replay": "present only on replayed records: `window`, `lake` or `deadletter`",
    "replay-source": "where the replayed record was read from",
    "replayed-at": "when it was replayed, epoch milliseconds",
}

# name → (topic field, key, description, payload schema file or None, headers)
_CHANNELS: Final = {
    "callstateRaw": (
        "callstate_raw",
        "call uuid",
        "Every accepted call-state callback, the exact bytes the platform posted.",
        "callstream.callstate.raw",
        _RAW_HEADERS,
    ),
    "cdrRaw": (
        "cdr_raw",
        "call uuid",
        "Every accepted call record (CDR) callback, the exact bytes the platform posted.",
        "callstream.cdr.raw",
        _RAW_HEADERS,
    ),
    "callstate": (
        "callstate",
        "call uuid",
        "Call-state events with codes decoded and times in UTC; written in Kafka "
        "transactions (read with isolation.level=read_committed).",
        "callstream.callstate",
        {},
    ),
    "cdr": (
        "cdr",
        "call uuid",
        "Call records with hangup cause and direction decoded, UTC times and durations; "
        "transactional, deduplicated by record_id.",
        "callstream.cdr",
        {},
    ),
    "recordings": (
        "recordings",
        "call uuid",
        "One record per call recording safely archived in S3 (bucket, key, size, sha256).",
        "callstream.recordings",
        {},
    ),
    "extensions": (
        "extensions",
        "tenant/extnumber",
        "Each extension's current state (ringing, talking, idle, or the platform's status), "
        "since when, and its call; compacted: the latest per extension is kept. Written by "
        "`callstream board` in transactions.",
        "callstream.extensions",
        {Header.TENANT: "the platform company code"},
    ),
    "metricsMinute": (
        "metrics_minute",
        "tenant/minute (UTC ISO-8601)",
        "A tenant's calls that ended in one minute: offered, answered, missed, answer rate, "
        "ring and talk time (mean, p90), top hangup causes, per direction. Published when "
        "the minute closes; a late CDR republishes it (`late_calls`). Compacted.",
        "callstream.metrics.minute",
        {Header.TENANT: "the platform company code"},
    ),
    "anomalies": (
        "anomalies",
        "tenant/call uuid",
        "Calls whose records do not add up: `missing_cdr` (call-state events, no CDR within "
        "the reconciliation time) and `missing_callstate` (a CDR, no call-state event, from "
        "a tenant that sends them).",
        "callstream.anomalies",
        {Header.TENANT: "the platform company code"},
    ),
    "deadletter": (
        "deadletter",
        "call uuid when known, else none",
        "Input that could not be processed, its bytes unchanged, with why in headers.",
        None,
        {**_RAW_HEADERS, **_DLQ_HEADERS},
    ),
    "recordingsRetry": (
        "recordings_retry",
        "call uuid",
        "Internal to the recordings service: CDRs whose recording is retried later.",
        "callstream.cdr",
        {},
    ),
}


def _headers(names: dict[str, str]) -> dict[str, Any]:
    every = {**names, **_REPLAY_HEADERS}
    return {
        "type": "object",
        "description": "Kafka record headers; every value is UTF-8 text.",
        "properties": {
            name: {"type": "string", "description": text} for name, text in every.items()
        },
    }


def document() -> dict[str, Any]:
    topics = Topics()
    channels: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for name, (field, key, description, schema, headers) in _CHANNELS.items():
        message: dict[str, Any] = {
            "name": name,
            "contentType": "application/json" if schema else "application/octet-stream",
            "headers": _headers(headers),
            "bindings": {"kafka": {"key": {"type": "string", "description": key}}},
            "payload": {"$ref": f"schemas/{schema}.schema.json"} if schema else {},
        }
        messages[name] = message
        channels[name] = {
            "address": getattr(topics, field),
            "description": description,
            "messages": {name: {"$ref": f"#/components/messages/{name}"}},
        }
        operations[f"receive{name[0].upper()}{name[1:]}"] = {
            "action": "receive",
            "channel": {"$ref": f"#/channels/{name}"},
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "callstream topics",
            "version": "1",
            "description": "What callstream publishes to Kafka. Keys are the call uuid, so "
            "a call's events are in order within their topic. See docs/topics.md.",
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    }


def render() -> bytes:
    return msgspec.json.format(msgspec.json.encode(document()), indent=2) + b"\n"


if __name__ == "__main__":
    sys.stdout.buffer.write(render())
