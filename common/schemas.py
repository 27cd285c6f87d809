"""JSON Schemas of every topic's values, generated from the msgspec types that write them.

`python -m common.schemas docs/schemas` rewrites the committed copies; a unit test fails
when they drift from the code.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Final

import msgspec

from common.records import (
    AnomalyRecord,
    CallStateRecord,
    CdrRecord,
    ExtensionRecord,
    MinuteMetricsRecord,
    RecordingRecord,
)
from yunhu.callbacks import CallState, Cdr

DIALECT: Final = "https://json-schema.org/draft/2020-12/schema"
_NUMERIC_STRING: Final = {"type": "string", "pattern": r"^\s*-?[0-9]+(\.0*)?\s*$"}
_BOOLEAN_STRING: Final = {"type": "string", "enum": ["true", "false", "True", "False"]}


def _lenient(node: Any) -> Any:
    """The raw callbacks as the receiver's decoder takes them: numbers and booleans may
    also arrive as strings (the platform's example sends `"method": "1"`)."""
    if isinstance(node, list):
        return [_lenient(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {k: _lenient(v) for k, v in node.items()}
    if out.get("type") == "integer":
        return {"anyOf": [{"type": "integer"}, _NUMERIC_STRING]}
    if out.get("type") == "boolean":
        return {"anyOf": [{"type": "boolean"}, _BOOLEAN_STRING]}
    return out


def _schema(title: str, cls: type, description: str, *, lenient: bool = False) -> dict[str, Any]:
    schema = msgspec.json.schema(cls)
    if lenient:
        schema = _lenient(schema)
    return {"$schema": DIALECT, "title": title, "description": description, **schema}


def topic_schemas() -> dict[str, dict[str, Any]]:
    """Schema per topic role (the part of the topic name before any suffix)."""
    return {
        "callstream.callstate.raw": _schema(
            "callstate callback (raw)", CallState,
            "The platform's call-state callback, the exact bytes received. Fields the "
            "platform adds later pass through; only `uuid` is required.", lenient=True,
        ),
        "callstream.cdr.raw": _schema(
            "CDR callback (raw)", Cdr,
            "The platform's call record, the exact bytes received.", lenient=True,
        ),
        "callstream.callstate": _schema(
            "call state record", CallStateRecord,
            "A call-state event with codes decoded and times in UTC.",
        ),
        "callstream.cdr": _schema(
            "call record", CdrRecord,
            "A call record with hangup cause and direction decoded, times in UTC, durations.",
        ),
        "callstream.recordings": _schema(
            "archived recording", RecordingRecord,
            "A call's recording, safely stored in S3.",
        ),
        "callstream.extensions": _schema(
            "extension state", ExtensionRecord,
            "An extension's current state, set by its latest call-state event.",
        ),
        "callstream.metrics.minute": _schema(
            "minute metrics", MinuteMetricsRecord,
            "A tenant's calls that ended in one minute, summed up.",
        ),
        "callstream.anomalies": _schema(
            "call anomaly", AnomalyRecord,
            "A call with call-state events but no CDR, or a CDR without call-state events.",
        ),
    }  # fmt: skip


_ENCODER: Final = msgspec.json.Encoder(order="sorted")


def render(schema: dict[str, Any]) -> bytes:
    return msgspec.json.format(_ENCODER.encode(schema), indent=2) + b"\n"


def write_all(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for topic, schema in topic_schemas().items():
        path = folder / f"{topic}.schema.json"
        path.write_bytes(render(schema))
        written.append(path)
    return written


if __name__ == "__main__":
    for written_path in write_all(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/schemas")):
        print(written_path)
