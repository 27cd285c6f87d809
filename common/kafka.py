"""aiokafka clients built from `KafkaSettings`, with the defaults every service relies on."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import (
    KafkaError,
    TopicAlreadyExistsError,
    UnknownTopicOrPartitionError,
    for_code,
)
from aiokafka.partitioner import murmur2

from common.config import KafkaSettings

log = logging.getLogger(__name__)

# aiokafka's commit, and a producer's closing flush, wait for the brokers for ever; either
# is given up on after this (what was not committed or delivered is read again).
GIVE_UP_SECONDS: Final = 10.0
# A read to an end offset that fetches no record for this long while records are due
# has lost its brokers (aiokafka's fetches then come back empty for ever).
READ_STALLS_AFTER: Final = 60.0


class KeyHashPartitioner:
    """Kafka's default (murmur2, as the Java client) with the hashes cached: a call's
    events share a key, and aiokafka's murmur2 is pure Python."""

    def __init__(self, cache_size: int = 65536) -> None:
        self._hashes: dict[bytes, int] = {}
        self._cache_size = cache_size

    def __call__(self, key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
        if key is None:
            return random.choice(available or all_partitions)  # noqa: S311
        hashed = self._hashes.get(key)
        if hashed is None:
            if len(self._hashes) >= self._cache_size:
                self._hashes.clear()
            hashed = self._hashes[key] = murmur2(key) & 0x7FFFFFFF
        return all_partitions[hashed % len(all_partitions)]


def durable_producer(settings: KafkaSettings, **overrides: Any) -> AIOKafkaProducer:
    """Idempotent, acks=all: a send that resolves is on every in-sync replica, once."""
    options: dict[str, Any] = {
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": 0,
        "request_timeout_ms": 30_000,
        "partitioner": KeyHashPartitioner(),
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


class CommitTimedOut(KafkaError):  # type: ignore[misc]
    """A commit given up on: the next one covers its offsets, or the records are read again."""

    retriable = True


class ReadStalled(KafkaError):  # type: ignore[misc]
    """A read fetched nothing for READ_STALLS_AFTER though records were due."""

    retriable = True


@dataclass(slots=True)
class StallGuard:
    """Told what each fetch brought, raises ReadStalled once `seconds` pass without a
    record."""

    seconds: float = READ_STALLS_AFTER
    _since: float = field(default_factory=time.monotonic, init=False)

    def saw(self, batches: Mapping[Any, Sequence[Any]]) -> None:
        now = time.monotonic()
        if any(batches.values()):
            self._since = now
        elif now - self._since > self.seconds:
            raise ReadStalled(f"no record fetched for {self.seconds:g}s; records were due")


class Committer(Protocol):
    async def commit(self, offsets: dict[TopicPartition, int]) -> None: ...


async def commit_within(
    consumer: Committer,
    offsets: Mapping[TopicPartition, int],
    seconds: float = GIVE_UP_SECONDS,
) -> None:
    """`consumer.commit(offsets)`, or CommitTimedOut after `seconds`."""
    try:
        async with asyncio.timeout(seconds):
            await consumer.commit(dict(offsets))
    except TimeoutError:
        raise CommitTimedOut(f"offsets not committed within {seconds:g}s") from None


async def stop_consumer(consumer: AIOKafkaConsumer) -> None:
    """`consumer.stop()`. With the brokers away, aiokafka's stop can end in the
    CancelledError of a fetch it cancelled itself (aio-libs/aiokafka#647): that one is
    logged; a stop that is itself cancelled still raises."""
    try:
        await consumer.stop()
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise
        log.warning("the consumer stopped with one of its own fetches cancelled (aiokafka #647)")


async def stop_producer(producer: AIOKafkaProducer, within: float = GIVE_UP_SECONDS) -> None:
    """`producer.stop()`, which first delivers what is queued and waits for the brokers to
    take it: given up on after `within` seconds, and what was not delivered is dropped.
    So only for records whose sender has not counted them as sent (not acknowledged: a
    consumer has not committed their input, a publisher has not returned)."""
    try:
        async with asyncio.timeout(within):
            await producer.stop()
    except TimeoutError:
        log.warning("the producer stopped with records not delivered after %gs", within)


@contextlib.asynccontextmanager
async def committed_reader(settings: KafkaSettings) -> AsyncIterator[AIOKafkaConsumer]:
    """A started group-less consumer of committed records (read_committed); the caller
    assigns and seeks."""
    consumer = AIOKafkaConsumer(
        **settings.client_kwargs(),
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_committed",
    )
    try:
        await consumer.start()
        yield consumer
    finally:
        await stop_consumer(consumer)


@contextlib.asynccontextmanager
async def topic_reader(
    settings: KafkaSettings, topics: Iterable[str]
) -> AsyncIterator[tuple[AIOKafkaConsumer, list[TopicPartition]]]:
    """A group-less read_committed consumer assigned every partition of `topics`."""
    tps = await partitions_of(settings, topics)
    async with committed_reader(settings) as consumer:
        consumer.assign(tps)
        yield consumer, tps


async def records_to_end(
    consumer: AIOKafkaConsumer,
    tps: list[TopicPartition],
    max_records: int = 5000,
    stops: Mapping[TopicPartition, int] | None = None,
    stalls_after: float = READ_STALLS_AFTER,
) -> AsyncIterator[list[Any]]:
    """Batches from the current positions up to the end offsets as they are now, or up to
    (not including) `stops`, when given; ReadStalled should the brokers go away."""
    ends = stops if stops is not None else await consumer.end_offsets(tps)
    guard = StallGuard(stalls_after)
    while due := [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
        batches = await consumer.getmany(*due, timeout_ms=500, max_records=max_records)
        guard.saw(batches)
        for tp, records in batches.items():
            yield records if stops is None else [r for r in records if r.offset < stops[tp]]


async def read_records(
    settings: KafkaSettings, topics: Iterable[str], starts: dict[TopicPartition, int] | None = None
) -> list[Any]:
    """Every committed record of `topics`, from `starts` (the beginning of a partition it
    does not name) up to the end offsets as they are now."""
    starts = starts or {}
    records: list[Any] = []
    async with topic_reader(settings, topics) as (consumer, tps):
        if unnamed := [tp for tp in tps if tp not in starts]:
            await consumer.seek_to_beginning(*unnamed)
        for tp in tps:
            if tp in starts:
                consumer.seek(tp, starts[tp])
        async for batch in records_to_end(consumer, tps):
            records.extend(batch)
    return records


@contextlib.asynccontextmanager
async def kafka_admin(settings: KafkaSettings) -> AsyncIterator[AIOKafkaAdminClient]:
    """A started admin client, closed on leaving."""
    admin = AIOKafkaAdminClient(**settings.client_kwargs(), request_timeout_ms=15_000)
    try:
        await admin.start()
        yield admin
    finally:
        await admin.close()


async def partitions_of(settings: KafkaSettings, topics: Iterable[str]) -> list[TopicPartition]:
    """Every partition of `topics`, as the cluster's metadata lists them."""
    names = list(topics)
    async with kafka_admin(settings) as admin:
        described = {d["topic"]: d for d in await admin.describe_topics(names)}
    tps: list[TopicPartition] = []
    for name in names:
        topic = described.get(name, {"error_code": UnknownTopicOrPartitionError.errno})
        if topic["error_code"] or not topic.get("partitions"):
            raise for_code(topic["error_code"] or UnknownTopicOrPartitionError.errno)(name)
        tps += sorted(TopicPartition(name, p["partition"]) for p in topic["partitions"])
    return tps


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
