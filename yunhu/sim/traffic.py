"""Realistic calls and the callbacks the platform posts for them.

A call rings for `ring` seconds, is answered or not, talks for `talk` seconds and hangs
up. Its call-state events (a-leg, and b-leg where the call method has one) come first,
then its CDR, all with mutually consistent times in the platform's time zone.
"""

from __future__ import annotations

import dataclasses
import random
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal
from zoneinfo import ZoneInfo

import msgspec

from yunhu.callbacks import CallbackKind

ANSWERED_CAUSES: Final = (10001,) * 8 + (10007, 10020)
UNANSWERED_CAUSES: Final = (10002, 10003, 10005, 10006, 10009, 10016)
B_LEG_METHODS: Final = frozenset({4, 5})  # API double call, predictive outbound
_ENCODER: Final = msgspec.json.Encoder()


@dataclass(frozen=True, slots=True)
class Callback:
    kind: CallbackKind
    companycode: str
    uuid: str
    body: bytes


@dataclass(frozen=True, slots=True)
class CallPlan:
    companycode: str
    uuid: str
    buuid: str
    cdr_id: int
    method: int
    direction: Literal["callout", "callin"]
    extnumber: str
    disnumber: str
    destnumber: str
    start: int  # epoch seconds
    ring: int
    talk: int  # 0 when not answered
    answered: bool
    hangupcause: int
    hangupdirection: int
    customuuid: str
    memberid: str
    crmid: str

    @property
    def end(self) -> int:
        return self.start + self.ring + self.talk

    def recordfilename(self, tz: ZoneInfo) -> str:
        if not self.answered or self.talk == 0:
            return ""
        day = datetime.fromtimestamp(self.start, tz).strftime("%Y%m%d")
        return f"{day}/{self.companycode}/{self.uuid}.wav"


def plan_call(rng: random.Random, companycode: str, cdr_id: int, now: int) -> CallPlan:
    """A call that has just ended at `now`."""
    answered = rng.random() < 0.7
    ring = rng.randint(1, 25) if answered else rng.randint(3, 45)
    talk = rng.randint(1, 240) if answered else 0
    method = rng.choice((1, 2, 3, 3, 3, 4, 5, 6))
    ext = f"{companycode}{rng.randint(1, 50):04d}"
    return CallPlan(
        companycode=companycode,
        uuid=str(uuid.UUID(int=rng.getrandbits(128), version=1)),
        buuid=str(uuid.UUID(int=rng.getrandbits(128), version=1)),
        cdr_id=cdr_id,
        method=method,
        direction="callin" if method == 6 and rng.random() < 0.5 else "callout",
        extnumber=ext,
        disnumber=f"0{rng.randint(20, 99)}{rng.randint(10_000_000, 99_999_999)}",
        destnumber=f"01{rng.randint(300_000_000, 899_999_999)}",
        start=now - ring - talk,
        ring=ring,
        talk=talk,
        answered=answered,
        hangupcause=rng.choice(ANSWERED_CAUSES if answered else UNANSWERED_CAUSES),
        hangupdirection=rng.choice((10040, 10041)),
        customuuid=f"cust-{rng.randint(1, 10**6)}",
        memberid=str(rng.randint(10**16, 10**17)),
        crmid=str(rng.randint(1000, 9999)),
    )


def _callstate(plan: CallPlan, status: str, at: int, *, b_leg: bool) -> bytes:
    # The platform's example sends every call-state field as a JSON string.
    inbound = plan.direction == "callin"
    return _ENCODER.encode(
        {
            "buuid": plan.buuid,
            "callee": plan.extnumber if inbound else plan.destnumber,
            "caller": plan.destnumber if inbound else plan.extnumber,
            "companycode": plan.companycode,
            "customuuid": plan.customuuid,
            "direction": plan.direction,
            "disnumber": plan.disnumber,
            "extnumber": plan.extnumber,
            "isbleg": "true" if b_leg else "false",
            "method": str(plan.method),
            "starttime": str(at),
            "status": status,
            "type": "call",
            "uuid": plan.uuid,
        }
    )


def _clock(epoch: int, tz: ZoneInfo) -> str:
    return datetime.fromtimestamp(epoch, tz).strftime("%Y-%m-%d %H:%M:%S")


def cdr_body(plan: CallPlan, tz: ZoneInfo) -> bytes:
    """Field names, order and JSON types as in the platform's example CDR."""
    return _ENCODER.encode(
        {
            "callmethod": plan.method,
            "starttime": _clock(plan.start, tz),
            "answertime": _clock(plan.start + plan.ring, tz) if plan.answered else "",
            "endtime": _clock(plan.end, tz),
            "duration": plan.ring,
            "billsec": plan.talk,
            "crmid": plan.crmid,
            "hangupdirection": plan.hangupdirection,
            "chengshudu": "0",
            "hangupcause": plan.hangupcause,
            "memberid": plan.memberid,
            "disnumber": plan.disnumber,
            "destnumber": plan.destnumber,
            "downloadip": "127.0.0.1",
            "recordfilename": plan.recordfilename(tz),
            "companycode": int(plan.companycode)
            if plan.companycode.isdigit()
            else plan.companycode,
            "type": plan.direction,
            "id": plan.cdr_id,
            "extnumber": plan.extnumber,
            "uuid": plan.uuid,
            "userkey": 1,
            "customuuid": plan.customuuid,
        }
    )


def callbacks(plan: CallPlan, tz: ZoneInfo) -> list[Callback]:
    """Every callback for the call, in the order the platform posts them."""
    return [callback for _, callback in timed_callbacks(plan, tz)]


def timed_callbacks(plan: CallPlan, tz: ZoneInfo) -> list[tuple[int, Callback]]:
    """Every callback for the call with the epoch second it happens at, in order."""
    legs = [False, True] if plan.method in B_LEG_METHODS else [False]
    steps = [("ring", plan.start)]
    if plan.answered:
        steps.append(("answer", plan.start + plan.ring))
    steps.append(("hangup", plan.end))
    out = [
        (
            at,
            Callback(
                "callstate", plan.companycode, plan.uuid, _callstate(plan, status, at, b_leg=b)
            ),
        )
        for status, at in steps
        for b in legs
    ]
    out.append((plan.end, Callback("cdr", plan.companycode, plan.uuid, cdr_body(plan, tz))))
    return out


def starting_now(plan: CallPlan) -> CallPlan:
    """The same call, starting when it was planned to end: for posting it live."""
    return dataclasses.replace(plan, start=plan.start + plan.ring + plan.talk)
