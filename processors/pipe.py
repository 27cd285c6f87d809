"""A `TransactionalPipe` wired to librdkafka: the group consumer, the transactional
producer and the rebalance listener, started (transactions begun) and closed on leaving.
What enrich and the board are built on."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from common.config import KafkaSettings
from common.retry import until_done
from processors.consumer import RdConsumer, Rebalance, consumer_config
from processors.runtime import BatchHooks, RevokeAfterBatch, TransactionalPipe, Transform
from processors.transactions import RdTransactions, TransactionFailed, producer_config


@dataclass(frozen=True, slots=True)
class PipeSpec:
    service: str
    group_id: str
    transactional_id: str  # stable per replica: a restarted one fences its predecessor
    inputs: Sequence[str]
    deadletter_topic: str
    session_timeout_ms: int = 45_000


@contextlib.asynccontextmanager
async def transactional_pipe(
    kafka: KafkaSettings,
    spec: PipeSpec,
    transform: Transform,
    hooks: BatchHooks | None,
    on_assigned: Rebalance | None = None,
) -> AsyncIterator[TransactionalPipe]:
    listener = RevokeAfterBatch(asyncio.Lock(), on_assigned)
    consumer = RdConsumer(
        consumer_config(kafka, spec.group_id, spec.session_timeout_ms),
        on_revoked=listener.on_partitions_revoked,
        on_assigned=listener.on_partitions_assigned,
    )
    transactions = RdTransactions(producer_config(kafka, spec.transactional_id), consumer)
    try:  # a start-up cut short (a stop signal while Kafka is away) closes both too
        await until_done(transactions.start, "starting transactions", retry_on=(TransactionFailed,))
        runner = TransactionalPipe(
            consumer,
            transactions,
            service=spec.service,
            deadletter_topic=spec.deadletter_topic,
            transform=transform,
            listener=listener,
            hooks=hooks,
        )
        consumer.subscribe(list(spec.inputs))
        yield runner
    finally:
        await consumer.close()
        await transactions.close()
