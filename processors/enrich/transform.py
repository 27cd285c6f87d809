"""Raw callback bytes (and the receiver's headers) → a canonical record. Pure functions."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from datetime import datetime
from functools import lru_cache
from typing import Final
from zoneinfo import ZoneInfo

from common.records import CallStateRecord, CdrRecord, Decoded, Moment, Origin
from common.topics import Header
from yunhu.callbacks import CallbackKind, CallState, Cdr, DecodeError, decode
from yunhu.codes import call_state_code

CALL_METHODS: Final = {
    0: "unlimited",
    1: "extension to extension",
    2: "extension direct dial",
    3: "api call",
    4: "api double call",
    5: "predictive outbound",
    6: "ivr or group call",
}
DIRECTIONS: Final = {"callout": "outbound", "callin": "inbound", "1": "inbound", "2": "outbound"}


class EnrichError(Exception):
    """A raw record that cannot be enriched (it passed the receiver: a bug or an old schema)."""

    retriable = False


@lru_cache(maxsize=4096)  # records arrive in bursts within the same seconds
def _utc_second(epoch_s: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch_s))


def _utc_iso(epoch_ms: int, *, millis: bool = False) -> str:
    text = _utc_second(epoch_ms // 1000)
    return f"{text}.{epoch_ms % 1000:03d}Z" if millis else f"{text}Z"


def platform_time(text: str, tz: ZoneInfo) -> Moment | None:
    """`"2018-03-14 12:18:21"` in the platform's zone, or epoch seconds; None when empty."""
    text = text.strip()
    return _moment(text, tz) if text else None


@lru_cache(maxsize=16384)  # a call's legs and events repeat the same times
def _moment(text: str, tz: ZoneInfo) -> Moment:
    try:
        if text.isdigit():
            epoch_ms = int(text) * 1000
        else:
            parsed = datetime.fromisoformat(text)
            moment = parsed if parsed.tzinfo else parsed.replace(tzinfo=tz)
            epoch_ms = int(moment.timestamp() * 1000)
        return Moment(text, _utc_iso(epoch_ms), epoch_ms)
    except (ValueError, OverflowError, OSError):
        raise EnrichError(f"unreadable time {text!r}") from None


@lru_cache(maxsize=256)  # Decoded is immutable; the same few codes recur
def method(code: int | None) -> Decoded | None:
    if code is None:
        return None
    name = CALL_METHODS.get(code)
    if name is None:
        return Decoded(code, "unknown", f"unknown call method {code}", known=False)
    return Decoded(code, name)


@lru_cache(maxsize=256)
def code(value: int | None) -> Decoded | None:
    if value is None:
        return None
    found = call_state_code(value)
    return Decoded(found.code, found.name, found.description, found.known)


@lru_cache(maxsize=256)
def hangup_direction(value: int | None) -> Decoded | None:
    if value is None:
        return None
    known = {10040: "caller", 10041: "callee"}.get(value)
    if known is None:
        return Decoded(value, "unknown", f"unknown hangup direction {value}", known=False)
    return Decoded(value, known, call_state_code(value).description)


def record_id(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def origin(headers: Mapping[str, bytes], topic: str, partition: int, offset: int) -> Origin:
    try:
        received_ms = int(headers.get(Header.RECEIVED_AT, b"0"))
    except ValueError:
        received_ms = 0
    return Origin(
        event_id=headers.get(Header.EVENT_ID, b"").decode(errors="replace"),
        received_at=_utc_iso(received_ms, millis=True),
        received_at_ms=received_ms,
        topic=topic,
        partition=partition,
        offset=offset,
    )


def callstate_record(event: CallState, tenant: str, where: Origin, tz: ZoneInfo) -> CallStateRecord:
    leg = "b" if event.isbleg else "a"
    return CallStateRecord(
        record_id=record_id("callstate", tenant, event.uuid, event.status, leg, event.starttime),
        tenant=tenant,
        uuid=event.uuid,
        buuid=event.buuid,
        status=event.status,
        type=event.type,
        direction=DIRECTIONS.get(event.direction, event.direction),
        direction_raw=event.direction,
        method=method(event.method),
        b_leg=event.isbleg,
        caller=event.caller,
        callee=event.callee,
        extnumber=event.extnumber,
        disnumber=event.disnumber,
        companycode=event.companycode,
        customuuid=event.customuuid,
        started=platform_time(event.starttime, tz),
        origin=where,
    )


def cdr_record(event: Cdr, tenant: str, where: Origin, tz: ZoneInfo) -> CdrRecord:
    answered_at = platform_time(event.answertime, tz)
    return CdrRecord(
        record_id=record_id("cdr", tenant, event.uuid, event.id),
        tenant=tenant,
        uuid=event.uuid,
        cdr_id=event.id,
        direction=DIRECTIONS.get(event.type, event.type),
        direction_raw=event.type,
        call_method=method(event.callmethod),
        started=platform_time(event.starttime, tz),
        answered_at=answered_at,
        ended=platform_time(event.endtime, tz),
        answered=answered_at is not None or bool(event.billsec),
        ring_seconds=event.duration,
        talk_seconds=event.billsec,
        hangup_cause=code(event.hangupcause),
        hangup_direction=hangup_direction(event.hangupdirection),
        has_recording=bool(event.recordfilename),
        recording_file=event.recordfilename,
        extnumber=event.extnumber,
        disnumber=event.disnumber,
        destnumber=event.destnumber,
        crmid=event.crmid,
        memberid=event.memberid,
        customuuid=event.customuuid,
        chengshudu=event.chengshudu,
        userkey=event.userkey,
        downloadip=event.downloadip,
        companycode=event.companycode,
        origin=where,
    )


def enrich(
    kind: CallbackKind, value: bytes, headers: Mapping[str, bytes], where: Origin, tz: ZoneInfo
) -> CallStateRecord | CdrRecord:
    """Raises EnrichError for a body that does not decode or carries an unreadable time."""
    event = decode(kind, value)
    if isinstance(event, DecodeError):
        raise EnrichError(f"{event.reason}: {event.detail}")
    tenant = headers.get(Header.TENANT, b"").decode(errors="replace") or event.companycode
    if isinstance(event, Cdr):
        return cdr_record(event, tenant, where, tz)
    return callstate_record(event, tenant, where, tz)
