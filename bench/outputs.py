"""What a pipe committed to its output topics, for checking two runtimes wrote the same."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from common.config import KafkaSettings

Written = tuple[bytes | None, bytes | None, tuple[Any, ...]]  # key, value, headers


def committed_reader(kafka: KafkaSettings, **config: Any) -> Consumer:
    """A consumer of committed records only, in a group of its own that commits nothing
    (it is assigned its partitions)."""
    return Consumer(
        {
            **kafka.rdkafka_settings(),
            "group.id": f"bench-read-{uuid.uuid4().hex[:6]}",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            **config,
        }
    )


def committed_outputs(
    kafka: KafkaSettings, topics: Sequence[str], partitions: int
) -> dict[tuple[int, int], list[Written]]:
    """Every committed record, by (index of its topic in `topics`, partition), in order."""
    consumer = committed_reader(kafka)
    try:
        ends: dict[tuple[str, int], int] = {}
        starts = []
        for topic in topics:
            for partition in range(partitions):
                low, high = consumer.get_watermark_offsets(
                    TopicPartition(topic, partition), timeout=10
                )
                if high > low:
                    ends[(topic, partition)] = high
                    starts.append(TopicPartition(topic, partition, low))
        consumer.assign(starts)
        out: dict[tuple[int, int], list[Written]] = {}
        idle = 0
        while ends and idle < 5:  # 5 s with nothing: what is left is markers only
            messages = consumer.consume(1000, 1.0)
            idle = 0 if messages else idle + 1
            for message in messages:
                if message.error() is not None:
                    continue
                where = (message.topic() or "", message.partition() or 0)
                key = (topics.index(where[0]), where[1])
                headers = tuple(message.headers() or ())
                out.setdefault(key, []).append((message.key(), message.value(), headers))
            _drop_read(consumer, ends)
        return out
    finally:
        consumer.close()


def _drop_read(consumer: Consumer, ends: dict[tuple[str, int], int]) -> None:
    """Forget the partitions read to their end (past the last commit marker too)."""
    for tp in consumer.position([TopicPartition(t, p) for t, p in ends]):
        if tp.offset >= ends[(tp.topic, tp.partition)]:
            del ends[(tp.topic, tp.partition)]


def differences(
    a: dict[tuple[int, int], list[Written]], b: dict[tuple[int, int], list[Written]]
) -> str:
    """'' when identical; else what differs first."""
    for where in sorted(set(a) | set(b)):
        left, right = a.get(where, []), b.get(where, [])
        if len(left) != len(right):
            return f"topic {where[0]} partition {where[1]}: {len(left)} against {len(right)}"
        for index, (x, y) in enumerate(zip(left, right, strict=True)):
            if x != y:
                return f"topic {where[0]} partition {where[1]} record {index}: {x!r} != {y!r}"
    return ""
