"""Publishing many small records through aiokafka with little CPU per record.

aiokafka's `send()` costs a coroutine, a metadata check, a serializer pass and a future
per record. `BatchingProducer.send` instead appends the record to an open batch of its
partition (aiokafka's C batch builder) and returns that batch's future, shared by every
record in it. One pump per partition hands a batch to aiokafka as soon as the previous
one has left the accumulator, so batches grow with load and shrink to one record when
idle: no linger timer.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaProducer

from common.kafka import KeyHashPartitioner, partitions_of

PARTITIONS_TTL = 30.0


class _Open:
    __slots__ = ("batches", "pumping")

    def __init__(self) -> None:
        self.batches: deque[tuple[Any, asyncio.Future[None]]] = deque()
        self.pumping = False


class BatchingProducer:
    def __init__(self, producer: AIOKafkaProducer, partitioner: KeyHashPartitioner | None = None):
        self.producer = producer
        self._partitioner = partitioner or KeyHashPartitioner()
        self._partitions: dict[str, tuple[float, list[int]]] = {}
        self._open: dict[tuple[str, int], _Open] = {}

    async def send(
        self,
        topic: str,
        value: bytes,
        key: bytes | None = None,
        headers: Sequence[tuple[str, bytes]] = (),
    ) -> asyncio.Future[None]:
        """Queue the record; the returned future resolves when its batch is acknowledged."""
        partitions = await self._partitions_of(topic)
        partition = self._partitioner(key, partitions, partitions)
        slot = self._open.get((topic, partition))
        if slot is None:
            slot = self._open[(topic, partition)] = _Open()
        if (
            not slot.batches
            or slot.batches[-1][0].append(timestamp=None, key=key, value=value, headers=headers)
            is None
        ):
            builder = self.producer.create_batch()
            if builder.append(timestamp=None, key=key, value=value, headers=headers) is None:
                raise ValueError(f"record of {len(value)} bytes does not fit a batch")
            slot.batches.append((builder, asyncio.get_running_loop().create_future()))
        future = slot.batches[-1][1]
        if not slot.pumping:
            slot.pumping = True
            asyncio.get_running_loop().create_task(self._pump(topic, partition, slot))
        return future

    async def _partitions_of(self, topic: str) -> list[int]:
        known = self._partitions.get(topic)
        now = time.monotonic()
        if known is not None and now - known[0] < PARTITIONS_TTL:
            return known[1]
        partitions = await partitions_of(self.producer, topic)
        self._partitions[topic] = (now, partitions)
        return partitions

    async def _pump(self, topic: str, partition: int, slot: _Open) -> None:
        try:
            while slot.batches:
                builder, future = slot.batches.popleft()
                try:
                    delivery = await self.producer.send_batch(builder, topic, partition=partition)
                except Exception as err:  # noqa: BLE001 - handed to every waiting record
                    if not future.done():
                        future.set_exception(err)
                    continue
                delivery.add_done_callback(lambda done, f=future: _settle(done, f))
        finally:
            slot.pumping = False


def _settle(delivery: asyncio.Future[Any], future: asyncio.Future[None]) -> None:
    if future.done():
        return
    if delivery.cancelled():
        future.cancel()
    elif (err := delivery.exception()) is not None:
        future.set_exception(err)
    else:
        future.set_result(None)
