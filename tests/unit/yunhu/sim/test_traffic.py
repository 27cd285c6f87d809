from __future__ import annotations

import random
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from yunhu.callbacks import CallState, Cdr, decode_callstate, decode_cdr
from yunhu.sim.traffic import B_LEG_METHODS, callbacks, plan_call

TZ = ZoneInfo("Asia/Shanghai")
NOW = 1_795_700_000


def _time(text: str) -> int:
    return int(datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=TZ).timestamp())


@pytest.mark.parametrize("seed", range(5))
def test_cdr_fields_are_mutually_consistent(seed: int) -> None:
    rng = random.Random(seed)
    answered = 0
    for cdr_id in range(1, 201):
        plan = plan_call(rng, "9024", cdr_id, NOW)
        cdr = decode_cdr(callbacks(plan, TZ)[-1].body)
        assert isinstance(cdr, Cdr)
        start, end = _time(cdr.starttime), _time(cdr.endtime)
        assert end == NOW, "the call has just ended when its CDR is posted"
        assert cdr.hangupdirection in {10040, 10041}
        assert cdr.hangupcause is not None
        assert 10001 <= cdr.hangupcause <= 10041
        assert cdr.id == str(cdr_id)
        if cdr.answertime:
            answered += 1
            answer = _time(cdr.answertime)
            assert start <= answer <= end
            assert answer - start == cdr.duration
            assert cdr.billsec == end - answer
            assert cdr.billsec is not None
            assert cdr.billsec > 0
            assert cdr.recordfilename.endswith(f"/9024/{cdr.uuid}.wav")
        else:
            assert cdr.billsec == 0
            assert cdr.duration == end - start
            assert cdr.recordfilename == ""
    assert 100 < answered < 190, "both answered and unanswered calls occur"


@pytest.mark.parametrize("seed", range(5))
def test_call_state_events_come_first_in_order_and_agree_with_the_cdr(seed: int) -> None:
    rng = random.Random(seed)
    for cdr_id in range(1, 101):
        plan = plan_call(rng, "7001", cdr_id, NOW)
        sent = callbacks(plan, TZ)
        assert [c.kind for c in sent][-1] == "cdr"
        assert {c.uuid for c in sent} == {plan.uuid}
        events = [decode_callstate(c.body) for c in sent[:-1]]
        assert all(isinstance(e, CallState) for e in events)
        states = [e for e in events if isinstance(e, CallState)]
        legs = {e.isbleg for e in states}
        assert legs == ({False, True} if plan.method in B_LEG_METHODS else {False})
        for leg in legs:
            mine = [e for e in states if e.isbleg is leg]
            expected = ["ring", "answer", "hangup"] if plan.answered else ["ring", "hangup"]
            assert [e.status for e in mine] == expected
            times = [int(e.starttime) for e in mine]
            assert times == sorted(times)
            assert times[0] == plan.start
            assert times[-1] == plan.end


def test_the_same_seed_gives_the_same_calls() -> None:
    first = [plan_call(random.Random(42), "9024", i, NOW) for i in range(3)]
    again = [plan_call(random.Random(42), "9024", i, NOW) for i in range(3)]
    assert first == again
