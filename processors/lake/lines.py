"""One lake line per Kafka record, and the object names lines are grouped under.

A line keeps everything needed to put the record back: topic, partition, offset,
timestamp, key, headers and the value bytes (as text when the value is JSON, which is
how the platform posts, else base64). Text fields are exact: encoding them back to
UTF-8 gives the original bytes.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
from typing import Any, Final

import msgspec

from common.topics import Header
from yunhu.wire import is_safe_name

UNKNOWN_TENANT: Final = "_unknown"


class LakeLine(msgspec.Struct, frozen=True, gc=False, omit_defaults=True):
    topic: str
    partition: int
    offset: int
    timestamp: int  # epoch milliseconds, the record's Kafka timestamp
    headers: list[tuple[str, str]] = []
    key: str | None = None
    key_b64: str | None = None
    value: str | None = None
    value_b64: str | None = None
    headers_b64: bool = False  # header values are base64 (some were not UTF-8)

    def key_bytes(self) -> bytes | None:
        if self.key_b64 is not None:
            return base64.b64decode(self.key_b64)
        return None if self.key is None else self.key.encode()

    def value_bytes(self) -> bytes:
        if self.value_b64 is not None:
            return base64.b64decode(self.value_b64)
        return (self.value or "").encode()

    def header_pairs(self) -> list[tuple[str, bytes]]:
        if self.headers_b64:
            return [(k, base64.b64decode(v)) for k, v in self.headers]
        return [(k, v.encode()) for k, v in self.headers]


_ENCODER: Final = msgspec.json.Encoder()
_DECODER: Final = msgspec.json.Decoder(LakeLine)
_ANY: Final = msgspec.json.Decoder()


def _text(data: bytes) -> str | None:
    try:
        return data.decode()
    except UnicodeDecodeError:
        return None


def _json_text(data: bytes) -> str | None:
    text = _text(data)
    if text is None:
        return None
    try:
        _ANY.decode(data)
    except msgspec.DecodeError:
        return None
    return text


def to_line(record: Any) -> LakeLine:
    """A consumed aiokafka record as a lake line."""
    key, value = record.key, record.value or b""
    key_text = None if key is None else _text(key)
    value_text = _json_text(value)
    texts = [_text(v) for _, v in record.headers]
    plain = all(t is not None for t in texts)
    headers = [
        (k, t if plain and t is not None else base64.b64encode(v).decode())
        for (k, v), t in zip(record.headers, texts, strict=True)
    ]
    return LakeLine(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        timestamp=record.timestamp,
        headers=headers,
        headers_b64=not plain,
        key=key_text,
        key_b64=base64.b64encode(key).decode() if key is not None and key_text is None else None,
        value=value_text,
        value_b64=base64.b64encode(value).decode() if value_text is None else None,
    )


def encode_line(line: LakeLine) -> bytes:
    return _ENCODER.encode(line) + b"\n"


def decode_lines(data: bytes) -> list[LakeLine]:
    return [_DECODER.decode(raw) for raw in data.splitlines() if raw.strip()]


def tenant_of(headers: list[tuple[str, bytes]]) -> str:
    for name, value in headers:
        if name == Header.TENANT:
            text = _text(value)
            # The tenant becomes part of an object name: only a safe name will do.
            if text is not None and is_safe_name(text):
                return text
    return UNKNOWN_TENANT


def hour_of(timestamp_ms: int) -> dt.datetime:
    moment = dt.datetime.fromtimestamp(timestamp_ms / 1000, tz=dt.UTC)
    return moment.replace(minute=0, second=0, microsecond=0)


def object_key(  # noqa: PLR0917 - the name's parts, in the name's order
    prefix: str, topic: str, tenant: str, hour: dt.datetime, partition: int, start_offset: int
) -> str:
    """`{prefix}lake/{topic}/{tenant}/dt=YYYY-MM-DD/hour=HH/{partition}-{startoffset}.ndjson.gz`"""
    return (
        f"{topic_folder(prefix, topic)}{tenant}/dt={hour:%Y-%m-%d}/hour={hour:%H}/"
        f"{partition}-{start_offset}.ndjson.gz"
    )


def topic_folder(prefix: str, topic: str) -> str:
    """Where a topic's objects are; one folder per tenant below it."""
    return f"{prefix}lake/{topic}/"


def hour_prefixes(tenant_folder: str, start: dt.datetime, end: dt.datetime) -> list[str]:
    """Key prefixes of every hour from `start` to `end` in a tenant's folder."""
    hours, hour = [], hour_of(int(start.timestamp() * 1000))
    while hour < end:
        hours.append(f"{tenant_folder}dt={hour:%Y-%m-%d}/hour={hour:%H}/")
        hour += dt.timedelta(hours=1)
    return hours


_KEY = re.compile(r"/dt=(\d{4}-\d{2}-\d{2})/hour=(\d{2})/\d+-\d+\.ndjson\.gz$")


def hour_in_key(key: str) -> dt.datetime | None:
    found = _KEY.search(key)
    if found is None:
        return None
    day = dt.datetime.strptime(found.group(1), "%Y-%m-%d").replace(tzinfo=dt.UTC)
    return day + dt.timedelta(hours=int(found.group(2)))
