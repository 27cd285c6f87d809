"""The broker does what every service relies on: durable keyed writes and group offsets."""

from __future__ import annotations

import asyncio
import uuid

from aiokafka import ConsumerRecord, TopicPartition

from common.kafka import durable_producer, manual_consumer
from tests.integration.conftest import TopicFactory
from tests.support.services import Services


async def test_idempotent_round_trip_keeps_keys_headers_and_order(
    services: Services, new_topic: TopicFactory
) -> None:
    topic = await new_topic("smoke")
    sent = [(f"call-{i % 7}".encode(), f"event-{i}".encode(), i) for i in range(60)]
    producer = durable_producer(services.kafka)
    await producer.start()
    try:
        for key, value, i in sent:
            meta = await producer.send_and_wait(
                topic, value, key=key, headers=[("seq", str(i).encode()), ("kind", b"smoke")]
            )
            assert meta.offset >= 0
    finally:
        await producer.stop()

    consumer = manual_consumer(services.kafka, topic, group_id=f"g-{uuid.uuid4().hex}")
    await consumer.start()
    received: list[ConsumerRecord[bytes, bytes]] = []
    try:
        while len(received) < len(sent):
            batch = await asyncio.wait_for(consumer.getmany(timeout_ms=1000), 30)
            for records in batch.values():
                received.extend(records)
    finally:
        await consumer.stop()

    assert sorted(r.value for r in received) == sorted(v for _, v, _ in sent)
    for record in received:
        headers = dict(record.headers)
        assert headers["kind"] == b"smoke"
        assert record.value == f"event-{int(headers['seq'])}".encode()
        assert record.key == f"call-{int(headers['seq']) % 7}".encode()
    by_key: dict[bytes, list[int]] = {}
    for record in received:
        by_key.setdefault(record.key, []).append(int(dict(record.headers)["seq"]))
    assert all(seqs == sorted(seqs) for seqs in by_key.values()), "order per key was lost"
    assert len(by_key) == 7


async def test_committed_offsets_carry_over_to_the_next_group_member(
    services: Services, new_topic: TopicFactory
) -> None:
    topic = await new_topic("smoke", partitions=1)
    producer = durable_producer(services.kafka)
    await producer.start()
    try:
        for i in range(20):
            await producer.send_and_wait(topic, str(i).encode(), key=b"k")
    finally:
        await producer.stop()

    group = f"g-{uuid.uuid4().hex}"
    tp = TopicPartition(topic, 0)
    first = manual_consumer(services.kafka, topic, group_id=group, max_poll_records=10)
    await first.start()
    try:
        taken: list[ConsumerRecord[bytes, bytes]] = []
        while len(taken) < 10:
            batch = await first.getmany(tp, timeout_ms=1000, max_records=10 - len(taken))
            taken.extend(batch.get(tp, []))
        await first.commit({tp: taken[-1].offset + 1})
    finally:
        await first.stop()
    assert [int(r.value) for r in taken] == list(range(10))

    second = manual_consumer(services.kafka, topic, group_id=group)
    await second.start()
    try:
        assert await second.committed(tp) == 10
        rest: list[ConsumerRecord[bytes, bytes]] = []
        while len(rest) < 10:
            batch = await asyncio.wait_for(second.getmany(tp, timeout_ms=1000), 30)
            rest.extend(batch.get(tp, []))
    finally:
        await second.stop()
    assert [int(r.value) for r in rest] == list(range(10, 20))
