"""RdConsumer against the real broker: a read returns as soon as records are there, and
takes up to `max_records` of what is already fetched; a caught-up consumer does not send
a fetch request for every few records."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from confluent_kafka import Producer

from processors.consumer import FETCH_WAIT_MS, RdConsumer, TopicPartition, consumer_config
from tests.integration.conftest import TopicFactory
from tests.support.services import Services

PARTITIONS = 3


async def _nothing(_: list[TopicPartition]) -> None:
    return None


@contextlib.asynccontextmanager
async def _subscribed(services: Services, topic: str, **config: Any) -> AsyncIterator[RdConsumer]:
    """A consumer of `topic` (with `config` added to the services' consumer settings), once
    every partition is assigned to it; closed on leaving."""
    consumer = RdConsumer(
        {**consumer_config(services.kafka, f"g-{uuid.uuid4().hex}"), **config},
        on_revoked=_nothing,
    )
    consumer.subscribe([topic])
    try:
        async with asyncio.timeout(60):
            while len(consumer.assignment()) < PARTITIONS:
                await consumer.getmany(timeout_ms=100, max_records=500)
        yield consumer
    finally:
        await consumer.close()


def _produce(services: Services, topic: str, count: int, *, pause: float = 0.0) -> None:
    """`count` small records; with a `pause`, one at a time, each sent at once."""
    producer = Producer({**services.kafka.rdkafka_settings(), "acks": "all", "linger.ms": 0})
    for index in range(count):
        producer.produce(topic, b"v", str(index).encode())
        if pause:
            producer.poll(0)
            time.sleep(pause)
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


async def test_a_caught_up_consumer_fetches_at_most_once_per_fetch_wait(
    services: Services, new_topic: TopicFactory
) -> None:
    topic = await new_topic("consumer", PARTITIONS)
    fetches: list[tuple[float, int]] = []  # (when, fetch requests sent so far)

    def statistics(text: str) -> None:
        brokers = json.loads(text)["brokers"].values()
        sent = sum(broker.get("req", {}).get("Fetch", 0) for broker in brokers)
        fetches.append((time.monotonic(), sent))

    stats = {"statistics.interval.ms": 200, "stats_cb": statistics}
    count = 3000  # about one a millisecond: at least three seconds
    async with _subscribed(services, topic, **stats) as consumer:
        began = time.monotonic()
        trickle = asyncio.to_thread(_produce, services, topic, count, pause=0.001)
        producing = asyncio.create_task(trickle)
        received = 0
        try:
            async with asyncio.timeout(60):
                while received < count:
                    batch = await consumer.getmany(timeout_ms=100, max_records=500)
                    received += sum(len(records) for records in batch.values())
        finally:
            await producing
    # The middle of the trickle: its first and last half second are left out.
    window = [(at, sent) for at, sent in fetches if began + 0.5 <= at <= began + 2.5]
    assert len(window) >= 2, fetches
    (start, first), (end, last) = window[0], window[-1]
    per_second = (last - first) / (end - start)
    # librdkafka's default (fetch.min.bytes 1) fetches again as soon as a record is
    # there: hundreds of fetches a second for this trickle. Now at most one per
    # FETCH_WAIT_MS from the one broker, with room for timing.
    assert per_second < 2.5 * 1000 / FETCH_WAIT_MS, (per_second, fetches)
