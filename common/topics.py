"""Topic names and the headers callstream puts on every record."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import msgspec

from yunhu.callbacks import CallbackKind


class Topics(msgspec.Struct, frozen=True, kw_only=True):
    callstate_raw: str = "callstream.callstate.raw"
    cdr_raw: str = "callstream.cdr.raw"
    deadletter: str = "callstream.deadletter"
    callstate: str = "callstream.callstate"
    cdr: str = "callstream.cdr"
    recordings: str = "callstream.recordings"
    recordings_retry: str = "callstream.recordings.retry"
    extensions: str = "callstream.extensions"
    metrics_minute: str = "callstream.metrics.minute"
    anomalies: str = "callstream.anomalies"

    @classmethod
    def with_suffix(cls, suffix: str) -> Topics:
        """Every name with `.suffix` appended: how tests keep their data apart."""
        base = cls()
        return cls(**{f: f"{getattr(base, f)}.{suffix}" for f in base.__struct_fields__})

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Topics:
        suffix = env.get("CALLSTREAM_TOPIC_SUFFIX", "")
        return cls.with_suffix(suffix) if suffix else cls()

    def raw(self, kind: CallbackKind) -> str:
        return self.callstate_raw if kind == "callstate" else self.cdr_raw

    def all(self) -> tuple[str, ...]:
        return tuple(getattr(self, f) for f in self.__struct_fields__)


class Header:
    """Header names on raw records (ingest) and dead letters (every service)."""

    TENANT: Final = "tenant"
    KIND: Final = "kind"
    RECEIVED_AT: Final = "received-at"  # epoch milliseconds, decimal
    SOURCE: Final = "source"  # the client address the callback came from
    CONTENT_TYPE: Final = "content-type"
    EVENT_ID: Final = "event-id"  # unique per accepted callback
    SCHEMA_VERSION: Final = "schema-version"
    RECORD_ID: Final = "record-id"  # on derived records: the deterministic id to dedupe on
    DLQ_REASON: Final = "dlq-reason"
    DLQ_DETAIL: Final = "dlq-detail"
    DLQ_SERVICE: Final = "dlq-service"
    DLQ_SOURCE_TOPIC: Final = "dlq-source-topic"
    DLQ_SOURCE_PARTITION: Final = "dlq-source-partition"
    DLQ_SOURCE_OFFSET: Final = "dlq-source-offset"
    DLQ_ATTEMPTS: Final = "dlq-attempts"
    RETRY_NOT_BEFORE: Final = "retry-not-before"  # epoch milliseconds
    RETRY_ATTEMPTS: Final = "retry-attempts"
    RETRY_FIRST_AT: Final = "retry-first-at"  # epoch milliseconds of the first attempt


RAW_SCHEMA_VERSION: Final = b"1"


def dead_letter_headers(
    record: Any, *, service: bytes, reason: str, detail: str, attempts: int
) -> list[tuple[str, bytes]]:
    """A consumed record's headers (minus any earlier `dlq-*`) plus why and where it failed."""
    headers = [(k, v) for k, v in record.headers if not k.startswith("dlq-")]
    headers += [
        (Header.DLQ_REASON, reason.encode()),
        (Header.DLQ_DETAIL, detail.encode()),
        (Header.DLQ_SERVICE, service),
        (Header.DLQ_SOURCE_TOPIC, record.topic.encode()),
        (Header.DLQ_SOURCE_PARTITION, str(record.partition).encode()),
        (Header.DLQ_SOURCE_OFFSET, str(record.offset).encode()),
        (Header.DLQ_ATTEMPTS, str(attempts).encode()),
    ]
    return headers
