"""The canonical records callstream publishes (`callstream.callstate`, `callstream.cdr`).

Subscribers read these as JSON; field names and meanings are a contract. New fields get
defaults; consumers must ignore fields they do not know.
"""

from __future__ import annotations

import msgspec

SCHEMA_VERSION = 1


class Decoded(msgspec.Struct, frozen=True, gc=False):
    """A platform code with its meaning; `known` is false for codes not in the document."""

    code: int
    name: str
    description: str = ""
    known: bool = True


class Origin(msgspec.Struct, frozen=True, gc=False):
    """Where the record came from: the receiver's event and the raw topic position."""

    event_id: str
    received_at: str  # UTC ISO-8601
    received_at_ms: int
    topic: str
    partition: int
    offset: int


class Moment(msgspec.Struct, frozen=True, gc=False):
    """A platform time, as sent and normalised to UTC."""

    source: str
    utc: str  # ISO-8601 with Z
    epoch_ms: int


class CallStateRecord(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    record_id: str  # deterministic: the same event always gets the same id
    schema_version: int = SCHEMA_VERSION
    tenant: str
    uuid: str
    buuid: str
    status: str
    type: str
    direction: str  # "outbound" | "inbound" | as sent when not one of those
    direction_raw: str
    method: Decoded | None
    b_leg: bool | None
    caller: str
    callee: str
    extnumber: str
    disnumber: str
    companycode: str
    customuuid: str
    started: Moment | None
    origin: Origin


class CdrRecord(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    record_id: str
    schema_version: int = SCHEMA_VERSION
    tenant: str
    uuid: str
    cdr_id: str
    direction: str
    direction_raw: str
    call_method: Decoded | None
    started: Moment | None
    answered_at: Moment | None
    ended: Moment | None
    answered: bool
    ring_seconds: int | None  # the CDR's `duration`
    talk_seconds: int | None  # the CDR's `billsec`
    hangup_cause: Decoded | None
    hangup_direction: Decoded | None  # name "caller" or "callee"
    has_recording: bool
    recording_file: str
    extnumber: str
    disnumber: str
    destnumber: str
    crmid: str
    memberid: str
    customuuid: str
    chengshudu: str
    userkey: str
    downloadip: str
    companycode: str
    origin: Origin


class RecordingRecord(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """Announced on `callstream.recordings` once a recording is safely in S3."""

    record_id: str  # the CDR's record id
    schema_version: int = SCHEMA_VERSION
    tenant: str
    uuid: str
    cdr_id: str
    bucket: str
    key: str
    size: int
    sha256: str
    content_type: str
    source_file: str
    archived_at: str  # UTC ISO-8601
    attempts: int


class ExtensionRecord(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """An extension's current state, on the compacted `callstream.extensions` (key
    `tenant/extnumber`): the latest call-state event by event time decides it."""

    tenant: str
    extnumber: str
    schema_version: int = SCHEMA_VERSION
    state: str  # "ringing" | "talking" | "idle" | the platform's status as sent
    status: str  # the platform's status
    since: str  # UTC ISO-8601: the event that set this state
    since_ms: int
    call_uuid: str
    peer: str  # the other party's number
    direction: str


class Stat(msgspec.Struct, frozen=True, gc=False):
    mean: float
    p90: float


class CauseCount(msgspec.Struct, frozen=True, gc=False):
    name: str
    count: int


class CallCounts(msgspec.Struct, frozen=True, gc=False):
    offered: int
    answered: int
    missed: int


class MinuteMetricsRecord(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """A tenant's calls that ended in one minute (by the CDR's end time), on
    `callstream.metrics.minute` (key `tenant/minute`). Published when the minute closes
    (its end plus the allowed lateness has passed); a late CDR republishes it, counted in
    `late_calls`: the last record for a key holds every call."""

    tenant: str
    minute: str  # UTC ISO-8601 of the minute's start
    minute_ms: int
    schema_version: int = SCHEMA_VERSION
    offered: int
    answered: int
    missed: int
    answer_rate: float  # answered / offered; 0 without calls
    ring_seconds: Stat
    talk_seconds: Stat  # answered calls only
    hangup_causes: list[CauseCount]  # the most frequent first, at most five
    by_direction: dict[str, CallCounts]
    late_calls: int = 0


class AnomalyRecord(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """A call whose records do not add up, on `callstream.anomalies` (key `tenant/uuid`)."""

    kind: str  # "missing_cdr" | "missing_callstate"
    tenant: str
    uuid: str
    schema_version: int = SCHEMA_VERSION
    last_event: str  # UTC ISO-8601 of the call's last record
    detected_at: str  # UTC ISO-8601 event time (the board's watermark) when it was decided
    detail: str
