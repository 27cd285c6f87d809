"""replay window, deadletter and reset on fakes: a log of records per partition stands in
for Kafka, a dry-run-like publisher records what would be sent."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.structs import OffsetAndTimestamp

from common.topics import Header, Topics
from processors.replay.deadletter import republish_deadletters
from processors.replay.progress import Progress
from processors.replay.publish import REPLAY, REPLAY_SOURCE, Republisher
from processors.replay.reset import GroupBusyError, Move, moves, refuse_busy
from processors.replay.times import Window
from processors.replay.window import republish_window
from tests.unit.processors.test_lake_lines import TS, Rec

ROOT = Path(__file__).resolve().parents[3]
CALLSTATE = (ROOT / "yunhu" / "examples" / "callstate.json").read_bytes()
TOPICS = Topics()


@dataclass
class Log:
    """Partitions of records, read as a group-less consumer reads them."""

    parts: dict[TopicPartition, list[Rec]]
    positions: dict[TopicPartition, int] = field(default_factory=dict)

    async def end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: len(self.parts[tp]) for tp in tps}

    async def offsets_for_times(
        self, times: dict[TopicPartition, int]
    ) -> dict[TopicPartition, OffsetAndTimestamp | None]:
        found: dict[TopicPartition, OffsetAndTimestamp | None] = {}
        for tp, at in times.items():
            later = [r for r in self.parts[tp] if r.timestamp >= at]
            found[tp] = OffsetAndTimestamp(later[0].offset, later[0].timestamp) if later else None
        return found

    def assign(self, tps: list[TopicPartition]) -> None:
        self.positions = dict.fromkeys(tps, 0)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.positions[tp] = offset

    async def seek_to_beginning(self, *tps: TopicPartition) -> None:
        self.assign(list(tps))

    async def position(self, tp: TopicPartition) -> int:
        return self.positions[tp]

    async def getmany(self, *tps: TopicPartition, **_: Any) -> dict[TopicPartition, list[Rec]]:
        batch = {}
        for tp in tps or self.positions:
            records = self.parts[tp][self.positions[tp] : self.positions[tp] + 2]
            if records:
                batch[tp] = records
                self.positions[tp] += len(records)
        return batch


@dataclass
class Producer:
    """Acknowledges every send at once; `sent` is what a replay republished."""

    sent: list[tuple[str, bytes | None, bytes, dict[str, bytes]]] = field(default_factory=list)

    async def send(
        self, topic: str, value: bytes, key: bytes | None, headers: list[tuple[str, bytes]]
    ) -> asyncio.Future[None]:
        self.sent.append((topic, key, value, dict(headers)))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


def log_of(topic: str, *stamps: int) -> dict[TopicPartition, list[Rec]]:
    tp = TopicPartition(topic, 0)
    return {
        tp: [
            Rec(b"%d" % i, topic=topic, partition=0, offset=i, timestamp=s)
            for i, s in enumerate(stamps)
        ]
    }


def window_ms(start: int, end: int) -> Window:
    return Window(*(dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC) for ms in (start, end)))


def progress() -> Progress:
    return Progress("t", out=io.StringIO())


async def test_a_window_republishes_its_records_only_with_where_they_came_from() -> None:
    # offset 3 is out of order: inside the offsets' range but not the window
    log = Log(log_of("cdr", TS - 2000, TS, TS + 1000, TS - 5000, TS + 2000, TS + 9000))
    window = window_ms(TS, TS + 5000)
    producer, seen = Producer(), progress()
    await republish_window(
        log,
        list(log.parts),
        "cdr.again",
        window,
        publisher=Republisher(producer),
        progress=seen,
    )
    assert [value for _, _, value, _ in producer.sent] == [b"1", b"2", b"4"]
    assert {h[REPLAY] for *_, h in producer.sent} == {b"window"}
    assert producer.sent[0][3][REPLAY_SOURCE] == b"cdr/0/1"
    assert seen.counts == {"republished": 3, "outside_window": 1}
    assert seen.total == 4


async def test_an_empty_window_sends_nothing() -> None:
    log = Log(log_of("cdr", TS, TS + 1000))
    producer = Producer()
    window = window_ms(TS + 5000, TS + 9000)
    await republish_window(
        log,
        list(log.parts),
        "x",
        window,
        publisher=Republisher(producer),
        progress=progress(),
    )
    assert producer.sent == []


def letter(value: bytes, reason: str, source: str, offset: int) -> Rec:
    headers = [
        ("tenant", b"9024"),
        (Header.DLQ_REASON, reason.encode()),
        (Header.DLQ_SOURCE_TOPIC, source.encode()),
    ]
    return Rec(
        value, key=None, headers=headers, topic=TOPICS.deadletter, partition=0, offset=offset
    )


async def test_dead_letters_go_back_to_their_source_once_they_decode() -> None:
    tp = TopicPartition(TOPICS.deadletter, 0)
    letters = [
        letter(CALLSTATE, "invalid_json", TOPICS.callstate_raw, 0),  # decodes now: back
        letter(b"{broken", "invalid_json", TOPICS.cdr_raw, 1),  # still does not
        letter(b"{}", "invalid_json", "", 2),  # nowhere to go back to
        letter(b'{"a":1}', "KeyError", TOPICS.cdr, 3),  # a consumer's: back as it was
    ]
    log = Log({tp: letters})
    await log.seek_to_beginning(tp)
    producer, seen = Producer(), progress()
    await republish_deadletters(log, [tp], TOPICS, publisher=Republisher(producer), progress=seen)
    back = [(topic, value) for topic, _, value, _ in producer.sent]
    assert back == [(TOPICS.callstate_raw, CALLSTATE), (TOPICS.cdr, b'{"a":1}')]
    _, key, _, headers = producer.sent[0]
    assert key is not None
    assert key.decode() in CALLSTATE.decode(), "keyed by the call's uuid again"
    assert Header.DLQ_REASON not in headers
    assert headers["tenant"] == b"9024"
    assert seen.counts == {"republished": 2, "still_rejected": 1, "no_source_topic": 1}


async def test_dead_letters_of_another_reason_are_left_alone() -> None:
    tp = TopicPartition(TOPICS.deadletter, 0)
    log = Log({tp: [letter(CALLSTATE, "invalid_json", TOPICS.callstate_raw, 0)]})
    await log.seek_to_beginning(tp)
    producer, seen = Producer(), progress()
    await republish_deadletters(
        log,
        [tp],
        TOPICS,
        publisher=Republisher(producer),
        progress=seen,
        reason="tenant_mismatch",
    )
    assert producer.sent == []
    assert seen.counts == {"other_reason": 1}


def test_a_reset_moves_to_the_first_record_at_the_time_or_else_the_end() -> None:
    tp0, tp1, tp2 = (TopicPartition("t", p) for p in range(3))
    planned = moves(
        [tp0, tp1, tp2], {tp0: 50, tp2: 7}, {tp0: 30, tp1: 4}, {tp0: 60, tp1: 9, tp2: 8}
    )
    assert planned == [Move(tp0, 50, 30), Move(tp1, None, 4), Move(tp2, 7, 8)]


def test_a_reset_of_a_group_with_live_members_is_refused_unless_forced() -> None:
    with pytest.raises(GroupBusyError, match="2 live member"):
        refuse_busy("g", ["m1", "m2"], force=False)
    refuse_busy("g", ["m1"], force=True)
    refuse_busy("g", [], force=False)
