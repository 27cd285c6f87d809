"""enrich's per-partition dedupe against the real broker: a partition's new owner drops
the duplicates of what its previous owner published, and only the newest ids of the
partitions assigned (within the window) are read back."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import Counter

from confluent_kafka import Producer

from common.config import KafkaSettings
from common.topics import Header, Topics
from devkit.raw import publish_raw, simulated_callbacks
from processors.enrich.dedupe import Deduper
from processors.enrich.recent import RecentIds
from processors.runtime import TransactionalPipe
from tests.integration.conftest import TopicSetFactory
from tests.support.enrich import running_enrich
from tests.support.kafka import read_topic
from tests.support.services import Services


def replica(
    kafka: KafkaSettings, topics: Topics, group: str, instance: str
) -> contextlib.AbstractAsyncContextManager[TransactionalPipe]:
    """One of two enrich replicas of a group; a replica gone is noticed within 10 s."""
    return running_enrich(kafka, topics, group, instance, session_timeout_ms=10_000)


async def _output_ids(kafka: KafkaSettings, topics: Topics) -> list[bytes]:
    records = [*await read_topic(kafka, topics.callstate), *await read_topic(kafka, topics.cdr)]
    return [dict(r.headers)[Header.RECORD_ID] for r in records]


async def _wait_for_outputs(kafka: KafkaSettings, topics: Topics, count: int) -> None:
    async with asyncio.timeout(90):
        while len(await _output_ids(kafka, topics)) < count:
            await asyncio.sleep(0.5)


async def _wait_until(predicate: object, within: float = 60) -> None:
    async with asyncio.timeout(within):
        while not predicate():  # type: ignore[operator]
            await asyncio.sleep(0.2)


async def test_the_new_owner_of_a_partition_drops_the_duplicates_of_its_previous_owner(
    services: Services, topic_set: TopicSetFactory
) -> None:
    _, topics = await topic_set()
    group = f"g-{uuid.uuid4().hex}"
    items = simulated_callbacks(40, seed=21)
    all_partitions = 6  # two raw topics of three partitions
    async with replica(services.kafka, topics, group, "a") as a:
        async with replica(services.kafka, topics, group, "b") as b:
            await _wait_until(lambda: a.listener.assigned and b.listener.assigned)
            await publish_raw(services.kafka, topics, items)
            await _wait_for_outputs(services.kafka, topics, len(items))
            b_had = b.listener.assigned
        # b is gone: its partitions are a's now, with the ids b published in them.
        await _wait_until(lambda: len(a.listener.assigned) == all_partitions)
        await publish_raw(services.kafka, topics, items)  # the platform posts all again
        markers = simulated_callbacks(40, seed=22)
        await publish_raw(services.kafka, topics, markers)
        await _wait_for_outputs(services.kafka, topics, len(items) + len(markers))
        await asyncio.sleep(2)  # a duplicate, were it published, would have arrived by now
    ids = await _output_ids(services.kafka, topics)
    assert b_had, "b owned partitions before it left"
    assert len(ids) == len(items) + len(markers)
    assert Counter(ids).most_common(1)[0][1] == 1


def _produce(kafka: KafkaSettings, topic: str, partition: int, ids: list[str], at_ms: int) -> None:
    producer = Producer(kafka.rdkafka_settings())
    for record_id in ids:
        producer.produce(
            topic,
            b"{}",
            b"call",
            partition=partition,
            timestamp=at_ms,
            headers=[(Header.RECORD_ID, record_id.encode())],
        )
    assert producer.flush(30) == 0


async def test_only_the_newest_ids_of_the_assigned_partitions_within_the_window_are_loaded(
    services: Services, topic_set: TopicSetFactory
) -> None:
    _, topics = await topic_set()
    now_ms = int(time.time() * 1000)
    old = [f"old-{i}" for i in range(5)]
    new = [f"new-{i}" for i in range(25)]
    _produce(services.kafka, topics.cdr, 0, old, now_ms - 2 * 3600 * 1000)
    _produce(services.kafka, topics.cdr, 0, new, now_ms)
    _produce(services.kafka, topics.cdr, 1, ["elsewhere"], now_ms)
    p0 = (topics.cdr_raw, 0)
    outputs = {topics.cdr_raw: topics.cdr}

    bounded = Deduper(per_partition=10)
    await RecentIds(services.kafka, outputs, bounded, window_hours=24).on_assigned([p0])
    assert len(bounded) == 10
    assert not bounded.admit(p0, "new-24"), "the newest are loaded"
    assert bounded.admit(p0, "new-14"), "beyond the bound"

    windowed = Deduper(per_partition=100)
    await RecentIds(services.kafka, outputs, windowed, window_hours=1).on_assigned([p0])
    assert len(windowed) == len(new), "the two-hour-old ids are outside a one-hour window"
    assert windowed.admit(p0, "old-4")
    assert windowed.admit((topics.cdr_raw, 1), "elsewhere"), "partition 1 was not assigned"
