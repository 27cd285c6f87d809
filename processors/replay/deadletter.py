"""`replay deadletter`: dead letters back to where they came from, once they decode.

A raw callback the receiver's decoder still rejects stays in the dead-letter topic (it
is never removed: Kafka topics are append-only); records dead-lettered by a consumer go
back to that consumer's input as they were.
"""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, TopicPartition

from common.config import KafkaSettings
from common.kafka import records_to_end, topic_reader
from common.topics import Header, Topics
from processors.replay.progress import Progress
from processors.replay.publish import Republisher, replay_headers
from yunhu.callbacks import CallbackKind, DecodeError, decode


async def replay_deadletters(
    kafka: KafkaSettings,
    topics: Topics,
    publisher: Republisher,
    progress: Progress,
    reason: str | None = None,
) -> int:
    async with topic_reader(kafka, [topics.deadletter]) as (consumer, tps):
        await consumer.seek_to_beginning(*tps)
        return await republish_deadletters(
            consumer, tps, topics, publisher=publisher, progress=progress, reason=reason
        )


async def republish_deadletters(
    consumer: AIOKafkaConsumer,
    tps: list[TopicPartition],
    topics: Topics,
    *,
    publisher: Republisher,
    progress: Progress,
    reason: str | None = None,
) -> int:
    """Every dead letter from the consumer's positions to the end, sent back to its source
    topic if it decodes now (and has `reason`, if given); returns how many."""
    raw_kinds: dict[str, CallbackKind] = {topics.callstate_raw: "callstate", topics.cdr_raw: "cdr"}
    ends = await consumer.end_offsets(tps)
    progress.total = sum(ends.values()) - sum([await consumer.position(tp) for tp in tps])
    async for records in records_to_end(consumer, tps):
        for record in records:
            headers = dict(record.headers)
            found = headers.get(Header.DLQ_REASON, b"").decode()
            source = headers.get(Header.DLQ_SOURCE_TOPIC, b"").decode()
            if reason is not None and found != reason:
                progress.advance(other_reason=1)
                continue
            if not source:
                progress.advance(no_source_topic=1)
                continue
            key = record.key
            kind = raw_kinds.get(source)
            if kind is not None:
                event = decode(kind, record.value or b"")
                if isinstance(event, DecodeError):
                    progress.advance(still_rejected=1)
                    continue
                key = event.uuid.encode()
            where = f"{topics.deadletter}/{record.partition}/{record.offset}"
            await publisher.send(
                source, key, record.value, replay_headers(record.headers, "deadletter", where)
            )
            progress.advance(republished=1)
    await publisher.flush()
    return publisher.sent
