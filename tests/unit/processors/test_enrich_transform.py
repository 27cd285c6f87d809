from __future__ import annotations

import re
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from common.records import CallStateRecord, CdrRecord, Origin
from processors.enrich.transform import EnrichError, enrich, platform_time

ROOT = Path(__file__).resolve().parents[3]
TZ = ZoneInfo("Asia/Shanghai")
WHERE = Origin("ev1", "2026-11-26T00:00:00.000Z", 1795651200000, "raw", 0, 7)
CALLSTATE = (ROOT / "yunhu" / "examples" / "callstate.json").read_bytes()
CDR = re.sub(
    rb'("7003"|"cda5c6c4-0a17-11e8-b177-e7cbf2bd1f36"|"userkey":1) ',
    rb"\1, ",
    (ROOT / "yunhu" / "examples" / "cdr.json").read_bytes(),
)


def test_the_documents_cdr_becomes_a_canonical_record() -> None:
    record = enrich("cdr", CDR, {"tenant": b"20000013"}, WHERE, TZ)
    assert isinstance(record, CdrRecord)
    assert record.started is not None
    assert record.ended is not None
    assert (record.started.utc, record.started.epoch_ms) == ("2018-03-14T04:18:21Z", 1521001101000)
    assert record.ended.utc == "2018-03-14T04:18:35Z"
    assert record.answered_at is None
    assert not record.answered
    assert (record.ring_seconds, record.talk_seconds) == (14, 0)
    assert record.hangup_cause is not None
    assert (record.hangup_cause.code, record.hangup_cause.name) == (10001, "normal hangup")
    assert record.hangup_direction is not None
    assert (record.hangup_direction.code, record.hangup_direction.known) == (10015, False)
    assert record.call_method is not None
    assert record.call_method.name == "api call"
    assert (record.direction, record.has_recording, record.cdr_id) == ("outbound", False, "982")
    assert record.origin == WHERE


def test_the_documents_call_state_becomes_a_canonical_record() -> None:
    record = enrich("callstate", CALLSTATE, {"tenant": b"9024"}, WHERE, TZ)
    assert isinstance(record, CallStateRecord)
    assert record.started is not None
    assert record.started.utc == "2020-08-28T07:15:59Z"
    assert (record.status, record.b_leg, record.direction) == ("ring", False, "outbound")


def test_record_ids_are_deterministic_and_tell_events_apart() -> None:
    first = enrich("cdr", CDR, {"tenant": b"1"}, WHERE, TZ)
    again = enrich("cdr", CDR, {"tenant": b"1"}, WHERE, TZ)
    other_tenant = enrich("cdr", CDR, {"tenant": b"2"}, WHERE, TZ)
    assert first.record_id == again.record_id != other_tenant.record_id


def test_times_are_read_in_the_configured_zone() -> None:
    moment = platform_time("2018-03-14 12:18:21", ZoneInfo("UTC"))
    assert moment is not None
    assert moment.utc == "2018-03-14T12:18:21Z"
    assert platform_time("", TZ) is None
    with pytest.raises(EnrichError, match="unreadable time"):
        platform_time("yesterday", TZ)


def test_undecodable_bodies_raise() -> None:
    with pytest.raises(EnrichError, match="invalid_json"):
        enrich("cdr", b"{", {}, WHERE, TZ)
