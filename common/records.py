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
