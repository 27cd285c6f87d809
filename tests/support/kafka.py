"""Reading whole topics back in integration tests."""

from __future__ import annotations

import asyncio
from typing import TypeAlias

from aiokafka import ConsumerRecord

from common.config import KafkaSettings
from common.kafka import read_records

Record: TypeAlias = ConsumerRecord  # aiokafka ships no type information


async def read_topic(kafka: KafkaSettings, topic: str, within: float = 60.0) -> list[Record]:
    """Every record now in `topic` (all partitions, from the beginning, committed only)."""
    async with asyncio.timeout(within):
        return await read_records(kafka, [topic])
