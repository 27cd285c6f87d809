"""Canonical records for unit tests: every field set, the ones a test cares about given."""

from __future__ import annotations

from typing import Any

import msgspec

from common.records import CdrRecord, Origin

ORIGIN = Origin("e", "t", 0, "raw", 0, 0)
_CDR = CdrRecord(
    record_id="cdr:9024:u1:1",
    tenant="9024",
    uuid="u1",
    cdr_id="1",
    direction="outbound",
    direction_raw="",
    call_method=None,
    started=None,
    answered_at=None,
    ended=None,
    answered=True,
    ring_seconds=5,
    talk_seconds=30,
    hangup_cause=None,
    hangup_direction=None,
    has_recording=False,
    recording_file="",
    extnumber="",
    disnumber="",
    destnumber="",
    crmid="",
    memberid="",
    customuuid="",
    chengshudu="",
    userkey="",
    downloadip="",
    companycode="9024",
    origin=ORIGIN,
)


def a_cdr(**fields: Any) -> CdrRecord:
    """A CDR of tenant 9024, call u1, with `fields` changed (companycode follows tenant)."""
    if "tenant" in fields:
        fields.setdefault("companycode", fields["tenant"])
    return msgspec.structs.replace(_CDR, **fields)
