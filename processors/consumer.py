"""A group consumer on librdkafka (confluent-kafka) for asyncio code.

`consume()` blocks in librdkafka, so it runs in a worker thread; the partition
assignment callbacks librdkafka calls from inside it are handed to the event loop and
waited for, so a revocation can wait for the transaction in flight to finish first.
Its `group_metadata()` (generation and member id) is what a transaction's offsets are
committed with, so the broker fences a member that lost its partitions (KIP-447).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import Any, Final

import msgspec
from confluent_kafka import Consumer, KafkaError, KafkaException, Message
from confluent_kafka import TopicPartition as RdPartition

from common.config import KafkaSettings

log = logging.getLogger(__name__)

TopicPartition = tuple[str, int]
FETCH_MIN_BYTES: Final = 64 * 1024
FETCH_WAIT_MS: Final = 10  # the most a fetch adds to a record's latency
COMMITTED_TIMEOUT: Final = 10.0  # seconds to wait for the group coordinator's offsets
Rebalance = Callable[[list[TopicPartition]], Awaitable[None]]


class Record(msgspec.Struct, frozen=True, gc=False):
    """One consumed record, as transforms and dead letters read it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]
    timestamp: int  # epoch milliseconds


def to_record(message: Message) -> Record:
    return Record(
        message.topic() or "",
        message.partition() or 0,
        message.offset() or 0,
        message.key(),
        message.value(),
        list(message.headers() or ()),  # type: ignore[arg-type]
        message.timestamp()[1],
    )


def consume_ready(consumer: Consumer, max_records: int, timeout: float) -> list[Message]:
    """Up to `max_records`, returned as soon as one is there (or after `timeout`).

    librdkafka's batch consume returns when the whole batch is there or the timeout has
    passed: records that arrive while it waits for the rest are held until the timeout.
    So wait for one, then take what else is already fetched without waiting."""
    if timeout <= 0:
        return consumer.consume(max_records, 0)
    first = consumer.consume(1, timeout)
    if not first or max_records <= 1:
        return first
    return first + consumer.consume(max_records - 1, 0)


def consumer_config(
    kafka: KafkaSettings, group_id: str, session_timeout_ms: int = 45_000
) -> dict[str, Any]:
    return {
        **kafka.rdkafka_settings(),
        "group.id": group_id,
        # A member silent this long (frozen, partitioned) loses its partitions to the others.
        "session.timeout.ms": session_timeout_ms,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "isolation.level": "read_committed",
        # With librdkafka's default (fetch.min.bytes 1) a caught-up consumer's fetch returns
        # as soon as one record is there: a fetch request every few records, each work for
        # the broker and for librdkafka's thread. A fetch now returns once FETCH_MIN_BYTES
        # are there or FETCH_WAIT_MS have passed; a backlog is read as fast as before.
        "fetch.min.bytes": FETCH_MIN_BYTES,
        "fetch.wait.max.ms": FETCH_WAIT_MS,
        "logger": logging.getLogger("librdkafka"),
    }


class RdConsumer:
    """`getmany` in the style of aiokafka: records by partition, read in a thread."""

    def __init__(
        self,
        config: dict[str, Any],
        *,
        on_revoked: Rebalance,
        on_assigned: Rebalance | None = None,
        factory: Callable[[dict[str, Any]], Consumer] = Consumer,
    ) -> None:
        self._consumer = factory(config)
        self._on_revoked = on_revoked
        self._on_assigned = on_assigned
        self._loop: asyncio.AbstractEventLoop | None = None

    def subscribe(self, topics: Sequence[str]) -> None:
        self._loop = asyncio.get_running_loop()
        self._consumer.subscribe(
            list(topics), on_assign=self._assigned, on_revoke=self._revoked, on_lost=self._revoked
        )

    async def getmany(
        self, timeout_ms: int, max_records: int
    ) -> dict[TopicPartition, list[Record]]:
        messages = await asyncio.to_thread(
            consume_ready, self._consumer, max_records, timeout_ms / 1000
        )
        batch: dict[TopicPartition, list[Record]] = {}
        for message in messages:
            error = message.error()
            if error is not None:
                self._consume_error(error)
                continue
            record = to_record(message)
            batch.setdefault((record.topic, record.partition), []).append(record)
        return batch

    def _consume_error(self, error: KafkaError) -> None:
        if error.fatal():
            raise KafkaException(error)
        log.warning("consumer: %s", error)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self._consumer.seek(RdPartition(tp[0], tp[1], offset))

    def assignment(self) -> set[TopicPartition]:
        return {(tp.topic, tp.partition) for tp in self._consumer.assignment()}

    def group_metadata(self) -> object:
        return self._consumer.consumer_group_metadata()

    def lag(self) -> dict[TopicPartition, int]:
        """High-water mark minus position, per assigned partition, from what is cached."""
        assigned = self._consumer.assignment()
        lags: dict[TopicPartition, int] = {}
        for tp in self._consumer.position(assigned):
            _, high = self._consumer.get_watermark_offsets(tp, cached=True)
            if high >= 0 and tp.offset >= 0:
                lags[(tp.topic, tp.partition)] = max(0, high - tp.offset)
        return lags

    async def committed(self, tps: Collection[TopicPartition]) -> dict[TopicPartition, int]:
        """The group's committed offsets of `tps` (a partition with none is left out).
        read_committed makes librdkafka ask for stable offsets: a transaction still being
        settled is waited for, not read past. KafkaException if they are not there in
        time, or not for every partition."""
        asked = [RdPartition(topic, partition) for topic, partition in tps]
        found = await asyncio.to_thread(self._consumer.committed, asked, COMMITTED_TIMEOUT)
        offsets: dict[TopicPartition, int] = {}
        for tp in found:
            if tp.error is not None:
                raise KafkaException(tp.error)
            if tp.offset >= 0:
                offsets[(tp.topic, tp.partition)] = tp.offset
        return offsets

    async def close(self) -> None:
        await asyncio.to_thread(self._consumer.close)

    # librdkafka calls these from inside consume(), in its worker thread.

    def _revoked(self, _consumer: Consumer, partitions: list[RdPartition]) -> None:
        self._wait_for(self._on_revoked, partitions)

    def _assigned(self, _consumer: Consumer, partitions: list[RdPartition]) -> None:
        if self._on_assigned is not None:
            self._wait_for(self._on_assigned, partitions)

    def _wait_for(self, callback: Rebalance, partitions: list[RdPartition]) -> None:
        loop = self._loop
        assert loop is not None  # noqa: S101 - set by subscribe, before any consume
        tps = [(tp.topic, tp.partition) for tp in partitions]
        asyncio.run_coroutine_threadsafe(_call(callback, tps), loop).result()


async def _call(callback: Rebalance, tps: list[TopicPartition]) -> None:
    await callback(tps)
