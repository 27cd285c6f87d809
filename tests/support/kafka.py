"""Reading whole topics back in integration tests."""

from __future__ import annotations

import asyncio
import uuid
from typing import TypeAlias

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from common.config import KafkaSettings
from common.kafka import partitions_of

Record: TypeAlias = ConsumerRecord  # aiokafka ships no type information


async def read_topic(kafka: KafkaSettings, topic: str, within: float = 60.0) -> list[Record]:
    """Every record now in `topic` (all partitions, from the beginning, committed only)."""
    consumer = AIOKafkaConsumer(
        **kafka.client_kwargs(),
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_committed",
        client_id=f"test-reader-{uuid.uuid4().hex[:6]}",
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in await partitions_of(consumer, topic)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        records: list[Record] = []
        async with asyncio.timeout(within):
            while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
                batch = await consumer.getmany(timeout_ms=500)
                for items in batch.values():
                    records.extend(items)
        return records
    finally:
        await consumer.stop()
