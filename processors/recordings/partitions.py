"""Each assigned partition's batch worked on in a task of its own while the consumer
keeps polling.

A partition is paused while its batch is worked on, so long downloads never stop the
poll loop (and `max_poll_interval` never expires); its offsets are committed when the
batch is done. A record whose outcome Kafka did not acknowledge stops its batch there:
the offsets before it are committed and the partition is rewound to it, so it is read
again. On revocation the batches of the revoked partitions finish and commit first, so
the next owner starts after them; at a stop, those that do not finish in time are left
to the next owner.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import Any, Protocol

from aiokafka import ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import IllegalStateError, KafkaError

from common.kafka import commit_within

log = logging.getLogger(__name__)

Handle = Callable[[Any], Awaitable[None]]
REREAD_AFTER = 1.0  # seconds a partition waits before a record Kafka refused is read again


class PausingConsumer(Protocol):
    """What the workers need of aiokafka's `AIOKafkaConsumer`."""

    def pause(self, *partitions: TopicPartition) -> None: ...

    def resume(self, *partitions: TopicPartition) -> None: ...

    def seek(self, partition: TopicPartition, offset: int) -> None: ...

    def assignment(self) -> set[TopicPartition]: ...

    async def commit(self, offsets: dict[TopicPartition, int]) -> None: ...


@dataclass(frozen=True, slots=True)
class Worked:
    """How far a batch got: `next_offset` is the first record not handled."""

    next_offset: int
    whole: bool


class PartitionWorkers(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, consumer: PausingConsumer, handle: Handle) -> None:
        self.consumer = consumer
        self.handle = handle
        self.tasks: dict[TopicPartition, asyncio.Task[Worked]] = {}
        self.rebalances = 0

    def start(self, tp: TopicPartition, records: list[Any]) -> None:
        self.consumer.pause(tp)
        self.tasks[tp] = asyncio.create_task(self._work(records))

    async def _work(self, records: list[Any]) -> Worked:
        for record in records:
            try:
                await self.handle(record)
            except KafkaError as err:
                log.warning(
                    "a record's outcome was not written; it is read again",
                    extra={"topic": record.topic, "offset": record.offset, "error": repr(err)},
                )
                await asyncio.sleep(REREAD_AFTER)
                return Worked(int(record.offset), whole=False)
        return Worked(int(records[-1].offset) + 1, whole=True)

    async def settle(
        self, only: Collection[TopicPartition] | None = None, wait: bool = False
    ) -> None:
        """Commit the finished batches (waiting for those of `only`, or all, if asked)."""
        chosen = [tp for tp in self.tasks if only is None or tp in only]
        if wait and chosen:
            await asyncio.wait([self.tasks[tp] for tp in chosen])
        done = {tp: self.tasks.pop(tp).result() for tp in chosen if self.tasks[tp].done()}
        if not done:
            return
        try:
            await commit_within(
                self.consumer, {tp: worked.next_offset for tp, worked in done.items()}
            )
        except KafkaError as err:  # CommitFailedError, IllegalStateError, a broker away…
            log.warning("offsets not committed; they are redone: %r", err)
        assigned = self.consumer.assignment()
        for tp, worked in done.items():
            if tp not in assigned:
                continue
            if not worked.whole:
                self.consumer.seek(tp, worked.next_offset)
            try:
                self.consumer.resume(tp)
            except IllegalStateError:  # given up since `assignment()`
                continue

    async def finish(self, within: float) -> None:
        """As the service stops: every batch gets up to `within` seconds to finish (Kafka
        may be gone for good, and aiokafka's sends wait for it); those still running then
        are cancelled, and their records read again by the next owner. The rest commit."""
        if self.tasks:
            _, late = await asyncio.wait(self.tasks.values(), timeout=within)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late)
                log.warning("batches left unfinished as the service stops", extra={"n": len(late)})
            self.tasks = {tp: task for tp, task in self.tasks.items() if not task.cancelled()}
        await self.settle()

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        await self.settle(set(revoked), wait=True)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        self.rebalances += 1
        for tp in assigned:
            if tp not in self.tasks:
                self.consumer.resume(tp)
