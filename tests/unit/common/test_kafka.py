"""The aiokafka helpers every consumer stops and commits through: a commit that waits
for a coordinator for ever is given up on, retriably; aiokafka's stop ending in the
cancellation of one of its own fetches is not a crash, a stop cancelled by its caller is;
a producer's stop that waits for the brokers is given up on; a read to the end whose
fetches come back empty for too long is given up on, retriably."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import KafkaError

from common.kafka import (
    CommitTimedOut,
    ReadStalled,
    StallGuard,
    commit_within,
    records_to_end,
    stop_consumer,
    stop_producer,
)

TP = TopicPartition("raw", 0)


class Committer:
    def __init__(self, *, away: bool) -> None:
        self.away = away
        self.committed: list[dict[TopicPartition, int]] = []

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        if self.away:  # as aiokafka's: no coordinator, so it tries again, for ever
            await asyncio.Event().wait()
        self.committed.append(offsets)


async def test_a_commit_is_made_when_the_coordinator_answers() -> None:
    consumer = Committer(away=False)
    await commit_within(consumer, {TP: 7}, seconds=1.0)
    assert consumer.committed == [{TP: 7}]


async def test_a_commit_waiting_for_ever_is_given_up_on_retriably() -> None:
    started = time.monotonic()
    with pytest.raises(CommitTimedOut, match=r"within 0\.05s") as raised:
        await commit_within(Committer(away=True), {TP: 7}, seconds=0.05)
    assert time.monotonic() - started < 1.0
    assert isinstance(raised.value, KafkaError)
    assert raised.value.retriable


class StopsWithItsFetchCancelled:
    """aiokafka's stop with the brokers away: it cancels a fetch sleeping out its backoff
    and awaits it, and the CancelledError comes out (aio-libs/aiokafka#647)."""

    async def stop(self) -> None:
        fetch = asyncio.create_task(asyncio.sleep(10))
        await asyncio.sleep(0)
        fetch.cancel()
        await fetch


class SlowToStop:
    def __init__(self) -> None:
        self.stopping = asyncio.Event()

    async def stop(self) -> None:
        self.stopping.set()
        await asyncio.sleep(10)


async def test_a_stop_ending_in_its_own_fetch_s_cancellation_is_logged_not_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="common.kafka"):
        await stop_consumer(StopsWithItsFetchCancelled())
    assert "aiokafka #647" in caplog.text


async def test_a_stop_cancelled_by_its_caller_is_cancelled() -> None:
    consumer = SlowToStop()
    stopping = asyncio.create_task(stop_consumer(consumer))
    await consumer.stopping.wait()
    stopping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopping


class ProducerWithUndelivered:
    async def stop(self) -> None:  # as aiokafka's: delivers what is queued first
        await asyncio.Event().wait()


async def test_a_producer_s_stop_is_given_up_on_in_time(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="common.kafka"):
        await asyncio.wait_for(stop_producer(ProducerWithUndelivered(), within=0.05), 2)
    assert "not delivered" in caplog.text


async def test_a_guard_stalls_only_after_its_time_without_a_record() -> None:
    guard = StallGuard(0.05)
    guard.saw({})
    guard.saw({TP: []})
    await asyncio.sleep(0.06)
    guard.saw({TP: ["a record"]})  # a record: the time starts again
    guard.saw({})
    await asyncio.sleep(0.06)
    with pytest.raises(ReadStalled) as raised:
        guard.saw({TP: []})
    assert raised.value.retriable


class BrokersAway:
    """A consumer behind its end offset whose fetches come back empty, as aiokafka's do
    with the brokers gone."""

    def __init__(self) -> None:
        self.fetches = 0

    async def end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return dict.fromkeys(tps, 3)

    async def position(self, tp: TopicPartition) -> int:
        return 0

    async def getmany(
        self, *tps: TopicPartition, timeout_ms: int, max_records: int
    ) -> dict[TopicPartition, list[str]]:
        self.fetches += 1
        await asyncio.sleep(0.01)
        return {}


async def test_a_read_to_the_end_with_the_brokers_away_stalls_instead_of_waiting_for_ever() -> None:
    consumer = BrokersAway()

    async def read() -> list[list[str]]:
        return [b async for b in records_to_end(consumer, [TP], stalls_after=0.1)]

    with pytest.raises(ReadStalled):
        await asyncio.wait_for(read(), 5)
    assert consumer.fetches > 1, "it kept fetching until the guard's time was up"
