"""PartitionWorkers with a fake consumer: a finished batch is committed and its partition
resumed; a record Kafka refused is read again and nothing after it is committed; a failed
commit or a partition given up meanwhile does not stop the service; a stop does not wait
for a batch for ever."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import CommitFailedError, KafkaTimeoutError

from processors.recordings import partitions
from processors.recordings.partitions import PartitionWorkers

TP = TopicPartition("cdr", 0)


@dataclass(frozen=True)
class Rec:
    topic: str
    offset: int


@dataclass
class FakeConsumer:
    assigned: set[TopicPartition] = field(default_factory=lambda: {TP})
    paused: set[TopicPartition] = field(default_factory=set)
    seeks: list[tuple[TopicPartition, int]] = field(default_factory=list)
    commits: list[dict[TopicPartition, int]] = field(default_factory=list)
    refuse_commit: bool = False

    def pause(self, *tps: TopicPartition) -> None:
        self.paused.update(tps)

    def resume(self, *tps: TopicPartition) -> None:
        self.paused.difference_update(tps)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks.append((tp, offset))

    def assignment(self) -> set[TopicPartition]:
        return set(self.assigned)

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        if self.refuse_commit:
            raise CommitFailedError("the group rebalanced")
        self.commits.append(dict(offsets))


def batch(*offsets: int) -> list[Any]:
    return [Rec(TP.topic, o) for o in offsets]


@pytest.fixture(autouse=True)
def no_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(partitions, "REREAD_AFTER", 0.0)


async def test_a_finished_batch_is_committed_after_its_last_record_and_resumed() -> None:
    consumer, handled = FakeConsumer(), []

    async def handle(record: Any) -> None:
        handled.append(record.offset)

    workers = PartitionWorkers(consumer, handle)
    workers.start(TP, batch(10, 11, 12))
    assert TP in consumer.paused
    await workers.settle(wait=True)
    assert handled == [10, 11, 12]
    assert consumer.commits == [{TP: 13}]
    assert TP not in consumer.paused
    assert consumer.seeks == []


async def test_a_record_kafka_refused_is_read_again_and_nothing_after_it_committed() -> None:
    consumer, handled = FakeConsumer(), []

    async def handle(record: Any) -> None:
        if record.offset == 11:
            raise KafkaTimeoutError()
        handled.append(record.offset)

    workers = PartitionWorkers(consumer, handle)
    workers.start(TP, batch(10, 11, 12))
    await workers.settle(wait=True)
    assert handled == [10], "a record after the refused one was handled"
    assert consumer.commits == [{TP: 11}]
    assert consumer.seeks == [(TP, 11)]
    assert TP not in consumer.paused


async def test_a_failed_commit_is_logged_and_the_partition_goes_on() -> None:
    consumer = FakeConsumer(refuse_commit=True)

    async def handle(record: Any) -> None:
        return None

    workers = PartitionWorkers(consumer, handle)
    workers.start(TP, batch(1))
    await workers.settle(wait=True)
    assert consumer.commits == []
    assert TP not in consumer.paused
    assert workers.tasks == {}


async def test_a_partition_given_up_meanwhile_is_neither_resumed_nor_rewound() -> None:
    consumer = FakeConsumer()

    async def handle(record: Any) -> None:
        consumer.assigned.clear()
        raise KafkaTimeoutError()

    workers = PartitionWorkers(consumer, handle)
    workers.start(TP, batch(5))
    await workers.settle(wait=True)
    assert consumer.seeks == []
    assert TP in consumer.paused


async def test_settle_without_wait_commits_only_what_is_done() -> None:
    consumer, gate = FakeConsumer(), asyncio.Event()
    other = TopicPartition("cdr", 1)
    consumer.assigned.add(other)

    async def handle(record: Any) -> None:
        if record.topic == "slow":
            await gate.wait()

    workers = PartitionWorkers(consumer, handle)
    workers.start(TP, batch(1))
    workers.start(other, [Rec("slow", 7)])
    await asyncio.sleep(0)
    await workers.settle()
    assert consumer.commits == [{TP: 2}]
    assert other in workers.tasks
    gate.set()
    await workers.settle(wait=True)
    assert consumer.commits[-1] == {other: 8}


async def test_a_bug_in_handling_is_not_swallowed() -> None:
    async def handle(record: Any) -> None:
        raise ZeroDivisionError

    workers = PartitionWorkers(FakeConsumer(), handle)
    workers.start(TP, batch(1))
    with pytest.raises(ZeroDivisionError):
        await workers.settle(wait=True)


async def test_a_stop_commits_the_batches_that_finish_in_time_and_leaves_the_rest() -> None:
    consumer = FakeConsumer()
    stuck = TopicPartition("cdr", 1)
    consumer.assigned.add(stuck)

    async def handle(record: Any) -> None:
        if record.topic == "stuck":  # its outcome's send waits for a broker that is gone
            await asyncio.Event().wait()

    workers = PartitionWorkers(consumer, handle)
    workers.start(TP, batch(1, 2))
    workers.start(stuck, [Rec("stuck", 7)])
    await asyncio.wait_for(workers.finish(within=0.05), 2)
    assert consumer.commits == [{TP: 3}], "the stuck batch is read again by the next owner"
    assert workers.tasks == {}
