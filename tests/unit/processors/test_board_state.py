"""The board's state machine by event time: extension states, minutes closing after the
allowed lateness (late CDRs republish, counted), duplicates and arrival order changing
nothing, calls missing a record reported, and a rolled-back batch leaving no trace."""

from __future__ import annotations

import dataclasses
import random
import zlib
from functools import cache

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from common.records import (
    AnomalyRecord,
    CallStateRecord,
    CdrRecord,
    Decoded,
    ExtensionRecord,
    MinuteMetricsRecord,
    Moment,
    Origin,
)
from devkit.enriched import enriched_records
from processors.board.state import MINUTE_MS, Board, BoardSettings, Output
from tests.support.records import a_cdr

T0 = 1_796_000_000_000 - 1_796_000_000_000 % MINUTE_MS  # a minute's start
WHERE = Origin("e", "t", 0, "x", 0, 0)
SETTINGS = BoardSettings(lateness_ms=30_000, reconcile_ms=120_000, keep_minutes=60)


def moment(ms: int) -> Moment:
    return Moment(str(ms // 1000), "", ms)


def event(
    status: str, at: int, *, uuid: str = "c1", ext: str = "90240001", b_leg: bool = False
) -> CallStateRecord:
    return CallStateRecord(
        record_id=f"{uuid}{status}{at}",
        tenant="9024",
        uuid=uuid,
        buuid="",
        status=status,
        type="call",
        direction="outbound",
        direction_raw="callout",
        method=None,
        b_leg=b_leg,
        caller=ext,
        callee="0123",
        extnumber=ext,
        disnumber="",
        companycode="9024",
        customuuid="",
        started=moment(at),
        origin=WHERE,
    )


def cdr(
    uuid: str,
    ended: int,
    *,
    answered: bool = True,
    ring: int = 5,
    talk: int = 30,
    cause: str = "normal clearing",
    direction: str = "outbound",
    tenant: str = "9024",
) -> CdrRecord:
    return a_cdr(
        record_id=uuid,
        tenant=tenant,
        uuid=uuid,
        direction=direction,
        started=moment(ended - 1000 * (ring + talk)),
        ended=moment(ended),
        answered=answered,
        ring_seconds=ring,
        talk_seconds=talk if answered else 0,
        hangup_cause=Decoded(1, cause),
    )


def of(outputs: list[Output], which: str) -> list[bytes]:
    return [value for topic, _, value in outputs if topic == which]


def metrics(outputs: list[Output]) -> list[MinuteMetricsRecord]:
    return [msgspec.json.decode(v, type=MinuteMetricsRecord) for v in of(outputs, "metrics")]


def apply(board: Board, record: CallStateRecord | CdrRecord, partition: int = 0) -> list[Output]:
    if isinstance(record, CdrRecord):
        return board.apply_cdr(record, partition)
    return board.apply_callstate(record, partition)


def test_an_extension_rings_talks_and_goes_idle_by_event_time() -> None:
    board = Board(SETTINGS)
    out = board.apply_callstate(event("ring", T0))
    [ringing] = [msgspec.json.decode(v, type=ExtensionRecord) for v in of(out, "extensions")]
    assert (ringing.state, ringing.since_ms, ringing.peer, ringing.call_uuid) == (
        "ringing",
        T0,
        "0123",
        "c1",
    )
    board.apply_callstate(event("hangup", T0 + 9000))
    assert board.apply_callstate(event("answer", T0 + 2000)) == [], "older: changes nothing"
    assert board.extensions["9024", "90240001"].state == "idle"
    board.apply_callstate(event("ring", T0 + 20_000, uuid="c2", b_leg=True))
    assert board.extensions["9024", "90240001"].call_uuid == "c1", "the b-leg is the mobile side"
    board.apply_callstate(event("transfer", T0 + 30_000))
    assert board.extensions["9024", "90240001"].state == "transfer", "unknown states as sent"


def test_events_of_one_instant_order_by_how_far_the_call_got() -> None:
    board = Board(SETTINGS)
    board.apply_callstate(event("hangup", T0))
    board.apply_callstate(event("ring", T0))
    assert board.extensions["9024", "90240001"].state == "idle"


def test_a_minute_is_published_once_the_lateness_has_passed() -> None:
    board = Board(SETTINGS)
    out = board.apply_cdr(cdr("a", T0 + 10_000, ring=4, talk=60))
    out += board.apply_cdr(cdr("b", T0 + 20_000, answered=False, ring=20, cause="no answer"))
    out += board.apply_cdr(cdr("c", T0 + 30_000, ring=8, talk=10, direction="inbound"))
    out += board.apply_cdr(cdr("b", T0 + 20_000, answered=False, ring=20, cause="no answer"))
    assert metrics(out) == [], "the minute and its lateness are not over"
    out = board.apply_cdr(cdr("d", T0 + MINUTE_MS + 30_000))  # the watermark passes T0+90 s
    [minute] = metrics(out)
    assert minute.minute_ms == T0
    assert (minute.offered, minute.answered, minute.missed) == (3, 2, 1), "b once"
    assert minute.answer_rate == round(2 / 3, 4)
    assert (minute.ring_seconds.mean, minute.ring_seconds.p90) == (round(32 / 3, 2), 20.0)
    assert (minute.talk_seconds.mean, minute.talk_seconds.p90) == (35.0, 60.0)
    assert [(c.name, c.count) for c in minute.hangup_causes] == [
        ("normal clearing", 2),
        ("no answer", 1),
    ]
    assert {d: (c.offered, c.answered) for d, c in minute.by_direction.items()} == {
        "inbound": (1, 1),
        "outbound": (2, 1),
    }
    assert minute.late_calls == 0


def test_a_late_cdr_republishes_its_minute_and_is_counted() -> None:
    board = Board(SETTINGS)
    board.apply_cdr(cdr("a", T0 + 10_000))
    board.apply_cdr(cdr("d", T0 + 2 * MINUTE_MS))
    out = board.apply_cdr(cdr("late", T0 + 50_000))
    [again] = metrics(out)
    assert (again.minute_ms, again.offered, again.late_calls) == (T0, 2, 1)
    assert board.apply_cdr(cdr("late", T0 + 50_000)) == [], "a duplicate is not late twice"


def test_arrival_order_does_not_change_what_the_topics_end_with() -> None:
    records: list[CallStateRecord | CdrRecord] = []
    for i in range(40):
        start = T0 + i * 7_000
        records += [event("ring", start, uuid=f"u{i}", ext=f"ext{i % 5}")]
        records += [event("hangup", start + 5_000, uuid=f"u{i}", ext=f"ext{i % 5}")]
        records += [cdr(f"u{i}", start + 5_000, answered=i % 3 != 0)]
    finals = []
    for seed in (1, 2, 3):
        shuffled = list(records)
        random.Random(seed).shuffle(shuffled)
        board, last = Board(SETTINGS), {}
        # Anomalies are left out: shuffling moves records further apart than the
        # reconciliation time allows, which real arrival does not.
        for record in [*shuffled, cdr("end", T0 + 60 * MINUTE_MS)]:
            for topic, key, value in apply(board, record):
                if topic != "anomalies":
                    decoded = msgspec.json.decode(value)
                    decoded.pop("late_calls", None)  # how late a call was depends on order
                    last[key] = decoded
        finals.append(last)
    assert finals[0] == finals[1] == finals[2]
    assert sum(v["offered"] for v in finals[0].values() if "offered" in v) == 40


PARTITIONS = 3
PACED = BoardSettings(
    lateness_ms=30_000,
    reconcile_ms=120_000,
    stall_ms=3_600_000,
    partitions={"callstate": PARTITIONS, "cdr": PARTITIONS},
)


@cache
def three_waves() -> list[CallStateRecord | CdrRecord]:
    """Simulated calls (late-posted ones among them), ten event-time minutes apart."""
    return [r for w in range(3) for r in enriched_records(60, seed=70 + w, shift_ms=w * 600_000)]


def partition(record: CallStateRecord | CdrRecord) -> int:
    return zlib.crc32(record.uuid.encode()) % PARTITIONS


def what_ends_on_the_topics(
    records: list[CallStateRecord | CdrRecord],
) -> tuple[dict[str, object], set[str]]:
    board, last, found = Board(PACED), {}, set()
    for record in records:
        for topic, key, value in apply(board, record, partition(record)):
            if topic == "anomalies":
                found.add(key)
                continue
            decoded = msgspec.json.decode(value)
            decoded.pop("late_calls", None)  # how late a call was depends on order
            last[f"{topic}/{key}"] = decoded
    return last, found


@settings(max_examples=100, deadline=None)
@given(rng=st.randoms(use_true_random=False), most=st.sampled_from([20, 400, 3000]))
def test_partitions_read_at_their_own_pace_end_as_the_publish_order_does(
    rng: random.Random, most: int
) -> None:
    """Each partition of each topic in its own order, taken in bursts of any size (a
    restart resuming them at different offsets, a partition that lags): the same
    minutes, extension states and anomalies as reading everything as published."""
    records = three_waves()
    streams: list[list[CallStateRecord | CdrRecord]] = [[] for _ in range(2 * PARTITIONS)]
    for record in records:
        streams[partition(record) + PARTITIONS * isinstance(record, CdrRecord)].append(record)
    paced: list[CallStateRecord | CdrRecord] = []
    while any(streams):
        stream = rng.choice([s for s in streams if s])
        burst = rng.randint(1, most)
        paced += stream[:burst]
        del stream[:burst]
    assert what_ends_on_the_topics(paced) == what_ends_on_the_topics(records)


def anomaly_records(outputs: list[Output]) -> list[AnomalyRecord]:
    return [msgspec.json.decode(v, type=AnomalyRecord) for v in of(outputs, "anomalies")]


def anomalies(outputs: list[Output]) -> set[tuple[str, str]]:
    return {(a.kind, a.uuid) for a in anomaly_records(outputs)}


def test_calls_missing_a_record_are_reported_once_its_topic_has_passed_the_deadline() -> None:
    board = Board(SETTINGS)
    board.apply_callstate(event("ring", T0, uuid="no-cdr"))
    board.apply_callstate(event("hangup", T0 + 5000, uuid="no-cdr"))
    board.apply_cdr(cdr("no-callstate", T0 + 6000))
    board.apply_callstate(event("ring", T0 + 1000, uuid="whole", ext="e2"))
    board.apply_cdr(cdr("whole", T0 + 7000))
    assert anomalies(board.apply_cdr(cdr("x", T0 + 100_000))) == set(), "not due yet"
    # The call-state topic passes the deadlines first: it decides only what it lacks.
    out = board.apply_callstate(event("ring", T0 + 200_000, uuid="y", ext="e3"))
    assert anomalies(out) == {("missing_callstate", "no-callstate")}
    out = board.apply_cdr(cdr("z", T0 + 200_000))
    assert anomalies(out) == {("missing_cdr", "no-cdr")}
    assert ("9024", "whole") not in board.calls, "a complete call is forgotten"


def test_one_topic_read_far_ahead_raises_no_false_anomaly() -> None:
    """Within `stall_ms`: further behind, a topic counts as stopped."""
    board = Board(dataclasses.replace(SETTINGS, stall_ms=2 * 3_600_000))
    calls = [f"c{i}" for i in range(20)]
    found: set[tuple[str, str]] = set()
    for i, uuid in enumerate(calls):  # every call state first, an hour of them
        found |= anomalies(board.apply_callstate(event("ring", T0 + i * 180_000, uuid=uuid)))
    for i, uuid in enumerate(calls):  # then every CDR
        found |= anomalies(board.apply_cdr(cdr(uuid, T0 + i * 180_000 + 5000)))
    assert found == set()


def test_the_cdr_topic_read_far_ahead_raises_no_false_anomaly() -> None:
    """Whether a tenant sends call states is learnt from its first one, which may come
    after its CDRs: they still wait for the call-state topic, not for the CDR topic."""
    board = Board(dataclasses.replace(SETTINGS, stall_ms=2 * 3_600_000))
    calls = [f"c{i}" for i in range(20)]
    found: set[tuple[str, str]] = set()
    for i, uuid in enumerate(calls):  # every CDR first, an hour of them
        found |= anomalies(board.apply_cdr(cdr(uuid, T0 + i * 180_000 + 5000)))
    for i, uuid in enumerate(calls):  # then every call state
        found |= anomalies(board.apply_callstate(event("ring", T0 + i * 180_000, uuid=uuid)))
    last = T0 + 20 * 180_000 + 600_000  # both topics come well past every deadline
    found |= anomalies(board.apply_cdr(cdr("last", last)))
    found |= anomalies(board.apply_callstate(event("ring", last, uuid="last")))
    assert found == set()
    assert all(uuid == "last" for _, uuid in board.calls), "complete calls are forgotten"


def test_a_topic_that_stopped_holds_the_others_decisions_back_for_the_stall_time_only() -> None:
    settings = BoardSettings(lateness_ms=30_000, reconcile_ms=120_000, stall_ms=600_000)
    board = Board(settings)
    board.apply_cdr(cdr("a", T0))
    board.apply_callstate(event("ring", T0, uuid="a"))
    board.apply_callstate(event("hangup", T0 + 60_000, uuid="lost"))  # its CDR never comes
    out = board.apply_callstate(event("ring", T0 + 700_000, uuid="b", ext="e2"))
    assert anomalies(out) == set(), "the CDRs may be behind"
    out = board.apply_callstate(event("ring", T0 + 800_000, uuid="c", ext="e3"))
    assert anomalies(out) == {("missing_cdr", "lost")}, "ten minutes behind: stopped"


def test_a_call_still_talking_is_not_missing_its_cdr() -> None:
    board = Board(SETTINGS)  # reconcile in 2 minutes; calls may last 4 hours
    board.apply_callstate(event("ring", T0, uuid="long"))
    board.apply_callstate(event("answer", T0 + 5_000, uuid="long"))
    found = set()
    for i in range(1, 30):  # half an hour of other calls, whole
        found |= anomalies(board.apply_callstate(event("ring", T0 + i * MINUTE_MS, uuid=f"o{i}")))
        found |= anomalies(board.apply_cdr(cdr(f"o{i}", T0 + i * MINUTE_MS + 5_000)))
    assert found == set(), "answered half an hour ago and no hangup yet: still talking"
    board.apply_callstate(event("hangup", T0 + 30 * MINUTE_MS, uuid="long"))
    out = board.apply_cdr(cdr("late", T0 + 33 * MINUTE_MS))
    out += board.apply_callstate(event("ring", T0 + 33 * MINUTE_MS, uuid="late"))
    assert anomalies(out) == {("missing_cdr", "long")}, "hung up 3 minutes ago: its CDR is due"


def test_a_call_whose_hangup_and_cdr_were_lost_shows_after_the_longest_call() -> None:
    board = Board(dataclasses.replace(SETTINGS, max_call_ms=60 * MINUTE_MS))
    board.apply_callstate(event("ring", T0, uuid="lost"))
    out: list[Output] = []
    for i in range(1, 70):
        out += board.apply_callstate(event("ring", T0 + i * MINUTE_MS, uuid=f"o{i}"))
        out += board.apply_cdr(cdr(f"o{i}", T0 + i * MINUTE_MS + 5_000))
        if i == 61:
            assert anomalies(out) == set(), "not yet the longest call plus the reconciliation"
    decoded = anomaly_records(out)
    assert [(a.kind, a.uuid) for a in decoded] == [("missing_cdr", "lost")]
    assert decoded[0].detail == "call-state events but no hangup or CDR within 3720s"


def test_a_tenant_that_sends_no_call_state_has_no_missing_callstate() -> None:
    board = Board(SETTINGS)
    board.apply_cdr(cdr("a", T0, tenant="7001"))
    assert of(board.apply_cdr(cdr("b", T0 + 500_000, tenant="7001")), "anomalies") == []


def test_a_rolled_back_batch_leaves_no_trace_and_is_published_again() -> None:
    board = Board(SETTINGS)
    board.apply_cdr(cdr("a", T0 + 10_000))
    board.started()
    first = board.apply_cdr(cdr("d", T0 + 2 * MINUTE_MS))
    board.apply_callstate(event("ring", T0 + 2 * MINUTE_MS))
    assert len(metrics(first)) == 1
    board.aborted()
    assert ("9024", "90240001") not in board.extensions
    assert board.watermarks["9024"] == T0 + 10_000
    board.started()
    again = board.apply_cdr(cdr("d", T0 + 2 * MINUTE_MS))
    board.committed()
    assert metrics(again) == metrics(first), "the minute is published in the retried batch"
