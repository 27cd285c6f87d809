"""RdConsumer against the real broker: a read returns as soon as records are there, and
takes up to `max_records` of what is already fetched."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator

from confluent_kafka import Producer

from processors.consumer import RdConsumer, TopicPartition, consumer_config
from tests.integration.conftest import TopicFactory
from tests.support.services import Services

PARTITIONS = 3


async def _nothing(_: list[TopicPartition]) -> None:
    return None


@contextlib.asynccontextmanager
async def _subscribed(services: Services, topic: str) -> AsyncIterator[RdConsumer]:
    """A consumer of `topic`, once every partition is assigned to it; closed on leaving."""
    consumer = RdConsumer(
        consumer_config(services.kafka, f"g-{uuid.uuid4().hex}"), on_revoked=_nothing
    )
    consumer.subscribe([topic])
    try:
        async with asyncio.timeout(60):
            while len(consumer.assignment()) < PARTITIONS:
                await consumer.getmany(timeout_ms=100, max_records=500)
        yield consumer
    finally:
        await consumer.close()


def _produce(services: Services, topic: str, count: int) -> None:
    producer = Producer({**services.kafka.rdkafka_settings(), "acks": "all"})
    for index in range(count):
        producer.produce(topic, b"v", str(index).encode())
    assert producer.flush(30) == 0


async def test_a_record_that_arrives_during_a_read_is_returned_at_once(
    services: Services, new_topic: TopicFactory
) -> None:
    topic = await new_topic("consumer", PARTITIONS)
    async with _subscribed(services, topic) as consumer:

        async def later() -> None:
            await asyncio.sleep(0.3)
            await asyncio.to_thread(_produce, services, topic, 1)

        producing = asyncio.create_task(later())
        started = time.monotonic()
        batch = await consumer.getmany(timeout_ms=10_000, max_records=500)
        took = time.monotonic() - started
        await producing
        assert sum(len(records) for records in batch.values()) == 1
        # librdkafka's batch consume alone would have waited for 500 records or 10 s.
        assert took < 5, f"the read waited {took:.1f}s for a record produced after 0.3s"


async def test_a_read_takes_up_to_max_records_of_what_is_fetched(
    services: Services, new_topic: TopicFactory
) -> None:
    topic = await new_topic("consumer", PARTITIONS)
    async with _subscribed(services, topic) as consumer:
        await asyncio.to_thread(_produce, services, topic, 1200)
        sizes: list[int] = []
        async with asyncio.timeout(60):
            while sum(sizes) < 1200:
                batch = await consumer.getmany(timeout_ms=1000, max_records=500)
                sizes.append(sum(len(records) for records in batch.values()))
                await asyncio.sleep(0.5)  # librdkafka fetches the rest meanwhile
        assert sum(sizes) == 1200
        assert max(sizes) == 500, sizes
