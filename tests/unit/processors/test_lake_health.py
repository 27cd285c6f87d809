"""The lake's lag, ages and health, with a fake consumer."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from aiokafka import TopicPartition

from processors.lake.service import Lake, LakeSettings

RAW = "callstream.cdr.raw"


@dataclass
class FakeConsumer:
    ends: dict[TopicPartition, int]
    committed_at: dict[TopicPartition, int | None] = field(default_factory=dict)

    def subscription(self) -> set[str]:
        return {RAW}

    def partitions_for_topic(self, topic: str) -> set[int]:
        return {tp.partition for tp in self.ends if tp.topic == topic}

    async def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: self.ends[tp] for tp in partitions}

    async def committed(self, tp: TopicPartition) -> int | None:
        return self.committed_at.get(tp)


def _lake(consumer: FakeConsumer) -> Lake:
    settings = LakeSettings(stall_seconds=0.2, lag_every=0.01)
    return Lake(consumer, lambda key, body: None, settings)


def _gauge(lake: Lake, name: str) -> float:
    value = lake.metrics.registry.get_sample_value(name)
    assert value is not None
    return value


async def _watch_a_while(lake: Lake) -> None:
    watcher = asyncio.create_task(lake.watch())
    await asyncio.sleep(0.05)
    watcher.cancel()


async def test_lag_counts_every_partition_from_the_groups_committed_offsets() -> None:
    tp0, tp1 = TopicPartition(RAW, 0), TopicPartition(RAW, 1)
    consumer = FakeConsumer({tp0: 100, tp1: 40}, {tp0: 90, tp1: None})  # tp1: never committed
    lake = _lake(consumer)
    await _watch_a_while(lake)
    assert lake.lag == 50
    assert _gauge(lake, "callstream_lake_lag_records") == 50


async def test_a_lake_without_progress_while_there_is_lag_is_unhealthy() -> None:
    tp0 = TopicPartition(RAW, 0)
    consumer = FakeConsumer({tp0: 100}, {tp0: 90})
    lake = _lake(consumer)
    await _watch_a_while(lake)
    assert lake.healthy(), "within the stall bound"
    await asyncio.sleep(0.25)
    await _watch_a_while(lake)
    assert not lake.healthy()
    assert _gauge(lake, "callstream_lake_seconds_since_flush") >= 0.2


async def test_a_lake_that_caught_up_is_healthy_however_long_it_was_idle() -> None:
    tp0 = TopicPartition(RAW, 0)
    consumer = FakeConsumer({tp0: 100}, {tp0: 100})
    lake = _lake(consumer)
    await asyncio.sleep(0.25)
    await _watch_a_while(lake)
    assert lake.lag == 0
    assert lake.healthy()
    assert _gauge(lake, "callstream_lake_seconds_since_flush") < 0.2


async def test_the_oldest_unflushed_age_follows_the_buffer() -> None:
    lake = _lake(FakeConsumer({}))
    lake.oldest_at = time.monotonic() - 5
    await _watch_a_while(lake)
    assert _gauge(lake, "callstream_lake_oldest_unflushed_age_seconds") >= 5
    lake.oldest_at = None
    await _watch_a_while(lake)
    assert _gauge(lake, "callstream_lake_oldest_unflushed_age_seconds") == 0
