"""`replay window`: republish the records of [start, end) from one topic to another."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, TopicPartition

from common.config import KafkaSettings
from common.kafka import committed_reader, partitions_of, records_to_end
from processors.replay.progress import Progress
from processors.replay.publish import Republisher, replay_headers
from processors.replay.times import Window


async def _bounds(
    consumer: AIOKafkaConsumer, tps: list[TopicPartition], start_ms: int, end_ms: int
) -> dict[TopicPartition, tuple[int, int]]:
    ends = await consumer.end_offsets(tps)
    firsts = await consumer.offsets_for_times(dict.fromkeys(tps, start_ms))
    lasts = await consumer.offsets_for_times(dict.fromkeys(tps, end_ms))
    bounds = {}
    for tp in tps:
        first = firsts[tp].offset if firsts.get(tp) is not None else ends[tp]
        last = lasts[tp].offset if lasts.get(tp) is not None else ends[tp]
        if last > first:
            bounds[tp] = (first, last)
    return bounds


async def replay_window(
    kafka: KafkaSettings,
    from_topic: str,
    to_topic: str,
    window: Window,
    *,
    publisher: Republisher,
    progress: Progress,
) -> int:
    """Republishes every record of `from_topic` whose timestamp is in the window."""
    tps = await partitions_of(kafka, [from_topic])
    async with committed_reader(kafka) as consumer:
        return await republish_window(
            consumer, tps, to_topic, window, publisher=publisher, progress=progress
        )


async def republish_window(
    consumer: AIOKafkaConsumer,
    tps: list[TopicPartition],
    to_topic: str,
    window: Window,
    *,
    publisher: Republisher,
    progress: Progress,
) -> int:
    """What `replay_window` does with a started group-less consumer; returns how many."""
    bounds = await _bounds(consumer, tps, window.start_ms, window.end_ms)
    progress.total = sum(last - first for first, last in bounds.values())
    if not bounds:
        return 0
    consumer.assign(list(bounds))
    for tp, (first, _) in bounds.items():
        consumer.seek(tp, first)
    stops = {tp: last for tp, (_, last) in bounds.items()}
    async for records in records_to_end(consumer, list(bounds), max_records=2000, stops=stops):
        for record in records:
            if not window.holds(record.timestamp):  # out-of-order timestamp
                progress.advance(outside_window=1)
                continue
            source = f"{record.topic}/{record.partition}/{record.offset}"
            headers = replay_headers(record.headers, "window", source)
            await publisher.send(to_topic, record.key, record.value, headers)
            progress.advance(republished=1)
    await publisher.flush()
    return publisher.sent
