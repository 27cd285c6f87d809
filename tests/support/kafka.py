"""Reading whole topics back in integration tests."""

from __future__ import annotations

import asyncio
from typing import TypeAlias

from aiokafka import ConsumerRecord

from common.config import KafkaSettings
from common.kafka import records_to_end, topic_reader

Record: TypeAlias = ConsumerRecord  # aiokafka ships no type information


async def read_topic(kafka: KafkaSettings, topic: str, within: float = 60.0) -> list[Record]:
    """Every record now in `topic` (all partitions, from the beginning, committed only)."""
    records: list[Record] = []
    async with topic_reader(kafka, [topic]) as (consumer, tps):
        await consumer.seek_to_beginning(*tps)
        async with asyncio.timeout(within):
            async for batch in records_to_end(consumer, tps):
                records.extend(batch)
    return records
