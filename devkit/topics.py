"""Topics of one test's or one benchmark run's own: created with a suffix, deleted after."""

from __future__ import annotations

import uuid

from common.config import KafkaSettings
from common.kafka import TopicSpec, ensure_topics, kafka_admin
from common.topics import Topics


async def new_topics(kafka: KafkaSettings, partitions: int = 3) -> tuple[str, Topics]:
    """Every callstream topic, with a suffix of this test's own, created on the broker."""
    suffix = uuid.uuid4().hex[:10]
    topics = Topics.with_suffix(suffix)
    await create_topics(kafka, topics, partitions)
    return suffix, topics


async def create_topics(kafka: KafkaSettings, topics: Topics, partitions: int = 3) -> None:
    await create_named(kafka, list(topics.all()), partitions)


async def create_named(kafka: KafkaSettings, names: list[str], partitions: int = 3) -> None:
    """Only these topics: a benchmark round that needs three of them creates three."""
    async with kafka_admin(kafka) as admin:
        await ensure_topics(admin, [TopicSpec(name, partitions) for name in names])


async def delete_topics(kafka: KafkaSettings, names: list[str]) -> None:
    """A broker piling up test and benchmark topics slows down: delete them when done."""
    async with kafka_admin(kafka) as admin:
        await admin.delete_topics(names)
