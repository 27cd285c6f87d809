"""aiokafka clients built from `KafkaSettings`, with the defaults every service relies on."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError, for_code

from common.config import KafkaSettings


def durable_producer(settings: KafkaSettings, **overrides: Any) -> AIOKafkaProducer:
    """Idempotent, acks=all: a send that resolves is on every in-sync replica, once."""
    options: dict[str, Any] = {
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": 2,
        "request_timeout_ms": 30_000,
        **overrides,
    }
    return AIOKafkaProducer(**settings.client_kwargs(), **options)


def manual_consumer(
    settings: KafkaSettings, *topics: str, group_id: str, **overrides: Any
) -> AIOKafkaConsumer:
    """A group member that commits only when told to, reading committed data only."""
    options: dict[str, Any] = {
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "isolation_level": "read_committed",
        **overrides,
    }
    return AIOKafkaConsumer(*topics, **settings.client_kwargs(), **options)


def admin_client(settings: KafkaSettings) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(**settings.client_kwargs(), request_timeout_ms=15_000)


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    partitions: int = 3
    replication: int = 1
    config: tuple[tuple[str, str], ...] = ()


async def ensure_topics(admin: AIOKafkaAdminClient, specs: Iterable[TopicSpec]) -> None:
    """Create the topics that do not exist yet; existing ones are left as they are."""
    wanted = [
        NewTopic(s.name, s.partitions, s.replication, topic_configs=dict(s.config)) for s in specs
    ]
    existing = set(await admin.list_topics())
    missing = [t for t in wanted if t.name not in existing]
    if not missing:
        return
    response = await admin.create_topics(missing)
    for topic, code, *message in response.topic_errors:
        error = for_code(code)
        # Another process may have created it between the listing and now.
        if code != 0 and error is not TopicAlreadyExistsError:
            raise error(f"creating topic {topic}: {message[-1] if message else ''}")
