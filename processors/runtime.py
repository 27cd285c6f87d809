"""The consume → transform → produce loop shared by callstream's consumers.

`TransactionalPipe` reads a batch (read_committed), turns each record into zero or more
output records, and publishes them together with the batch's offsets in one Kafka
transaction: a crash before the commit aborts both, so the committed output holds each
input once. A record the transform rejects goes to the dead-letter topic in the same
transaction, with headers naming the service, the error and the source position: the
group never stops on a poison record. Kafka errors abort the batch, rewind the
partitions to the batch's first offsets and try again with backoff.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError
from prometheus_client import CollectorRegistry, Counter, Gauge

from common.topics import dead_letter_headers

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Output:
    topic: str
    key: bytes | None
    value: bytes
    headers: Sequence[tuple[str, bytes]] = ()


class BatchHooks(Protocol):
    """Told whether the batch's transaction committed or was rolled back."""

    def committed(self) -> None: ...

    def aborted(self) -> None: ...


class Rejected(Exception):
    """The transform refuses this record for good: it goes to the dead-letter topic."""


Transform = Callable[[Any], list[Output]]  # a ConsumerRecord → outputs


@dataclass
class PipeMetrics:
    registry: CollectorRegistry = field(
        default_factory=lambda: CollectorRegistry(auto_describe=True)
    )

    def __post_init__(self) -> None:
        r = self.registry
        self.consumed = Counter(
            "callstream_consumed_records", "Records read", ["topic"], registry=r
        )
        self.produced = Counter(
            "callstream_produced_records", "Records written", ["topic"], registry=r
        )
        self.deadletters = Counter(
            "callstream_deadletters", "Records sent to the dead-letter topic", ["topic"],
            registry=r,
        )  # fmt: skip
        self.aborts = Counter("callstream_aborted_batches", "Batches rolled back", registry=r)
        self.lag = Gauge(
            "callstream_consumer_lag", "High-water mark minus position", ["topic", "partition"],
            registry=r,
        )  # fmt: skip


class RevokeAfterBatch(ConsumerRebalanceListener):  # type: ignore[misc]
    """Rebalance listener: partitions are given up only between batches."""

    def __init__(self, lock: asyncio.Lock) -> None:
        self.lock = lock

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        async with self.lock:  # let the batch in flight commit (or abort) first
            log.info("partitions revoked", extra={"partitions": [str(tp) for tp in revoked]})

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        log.info("partitions assigned", extra={"partitions": [str(tp) for tp in assigned]})


class TransactionalPipe:
    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        producer: AIOKafkaProducer,
        *,
        group_id: str,
        service: str,
        deadletter_topic: str,
        transform: Transform,
        hooks: BatchHooks | None = None,
        metrics: PipeMetrics | None = None,
        max_records: int = 500,
    ) -> None:
        self.consumer = consumer
        self.producer = producer
        self.group_id = group_id
        self.service = service.encode()
        self.deadletter_topic = deadletter_topic
        self.transform = transform
        self.hooks = hooks
        self.metrics = metrics or PipeMetrics()
        self.max_records = max_records
        self.lock = asyncio.Lock()
        self.listener = RevokeAfterBatch(self.lock)

    async def run(self, stop: asyncio.Event) -> None:
        backoff = 0.2
        while not stop.is_set():
            batch = await self.consumer.getmany(timeout_ms=500, max_records=self.max_records)
            if not batch:
                await self._export_lag()
                continue
            async with self.lock:
                try:
                    await self._commit(batch)
                except KafkaError as err:
                    if self.hooks is not None:
                        self.hooks.aborted()
                    self.metrics.aborts.inc()
                    log.warning("batch rolled back, will retry: %r", err)
                    for tp, records in batch.items():
                        self.consumer.seek(tp, records[0].offset)
                    await asyncio.sleep(backoff + random.uniform(0, backoff))  # noqa: S311
                    backoff = min(backoff * 2, 10.0)
                    continue
            backoff = 0.2
            await self._export_lag()

    async def _commit(self, batch: dict[TopicPartition, list[Any]]) -> None:
        outputs: list[Output] = []
        for records in batch.values():
            for record in records:
                self.metrics.consumed.labels(record.topic).inc()
                try:
                    outputs.extend(self.transform(record))
                except Rejected as err:
                    outputs.append(self._dead_letter(record, err))
        async with self.producer.transaction():
            futures = [
                await self.producer.send(o.topic, o.value, key=o.key, headers=list(o.headers))
                for o in outputs
            ]
            offsets = {tp: records[-1].offset + 1 for tp, records in batch.items()}
            await self.producer.send_offsets_to_transaction(offsets, self.group_id)
        await asyncio.gather(*futures)
        if self.hooks is not None:
            self.hooks.committed()
        for output in outputs:
            if output.topic == self.deadletter_topic:
                self.metrics.deadletters.labels(self.deadletter_topic).inc()
            self.metrics.produced.labels(output.topic).inc()

    def _dead_letter(self, record: Any, err: Exception) -> Output:
        log.warning(
            "dead letter", extra={"topic": record.topic, "offset": record.offset, "error": str(err)}
        )
        headers = dead_letter_headers(
            record, service=self.service, reason=type(err).__name__, detail=str(err), attempts=1
        )
        return Output(self.deadletter_topic, record.key, record.value or b"", headers)

    async def _export_lag(self) -> None:
        await export_lag(self.consumer, self.metrics)


async def export_lag(consumer: AIOKafkaConsumer, metrics: PipeMetrics) -> None:
    """Lag per assigned partition: the high-water mark minus our position."""
    for tp in consumer.assignment():
        high = consumer.highwater(tp)
        if high is None:
            continue
        position = await consumer.position(tp)
        metrics.lag.labels(tp.topic, str(tp.partition)).set(max(0, high - position))
