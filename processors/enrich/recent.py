"""The record ids enrich published lately, for the input partitions it is given: read back
from the tail of the matching output partition (only the `record-id` header is looked
at), at most `per_partition` of them and none older than the dedupe window. A partition
held across a rebalance is only read on from where its last load ended.

Raw and output topics share the key (the call uuid) and the partitioner, so with equal
partition counts raw partition p's records were written to output partition p; with
unequal counts every output partition is read and each id goes to its key's raw partition."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Mapping
from typing import Any

from confluent_kafka import Consumer, KafkaException
from confluent_kafka import TopicPartition as RdPartition

from common.config import KafkaSettings
from common.kafka import KeyHashPartitioner
from common.retry import until_done
from common.topics import Header
from processors.consumer import TopicPartition, consume_ready
from processors.enrich.dedupe import Deduper, Key, compact

log = logging.getLogger(__name__)

Found = dict[TopicPartition, dict[Key, None]]  # raw partition → its ids, oldest first
IDLE_SECONDS = 10.0  # nothing read this long: the rest is transaction markers


class RecentIds:
    def __init__(
        self,
        kafka: KafkaSettings,
        outputs: Mapping[str, str],  # raw topic → the output topic enrich writes it to
        deduper: Deduper,
        window_hours: float,
    ) -> None:
        self.kafka = kafka
        self.outputs = dict(outputs)
        self.deduper = deduper
        self.window_hours = window_hours
        self._loaded_to: dict[tuple[str, int], int] = {}  # output partition → offset read to

    async def on_assigned(self, assigned: list[TopicPartition]) -> None:
        """The new assignment's ids in the deduper; partitions given away forgotten."""
        self.deduper.keep_only(assigned)
        kept = self.deduper.partitions()
        started = time.monotonic()
        found = await until_done(
            lambda: asyncio.to_thread(self._read, assigned, kept),
            "reading back the recent record ids",
            retry_on=(KafkaException,),  # a broker away, a partition without a leader yet
        )
        for tp, ids in found.items():
            self.deduper.load(tp, ids)
        log.info(
            "dedupe loaded",
            extra={
                "partitions": len(assigned),
                "record_ids": sum(len(ids) for ids in found.values()),
                "seconds": round(time.monotonic() - started, 2),
            },
        )

    def _read(self, assigned: list[TopicPartition], kept: set[TopicPartition]) -> Found:
        consumer = Consumer(
            {
                **self.kafka.rdkafka_settings(),
                "group.id": f"enrich-dedupe-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
                # librdkafka's prefetch defaults (64 MiB queued, 50 MiB a fetch) would cost
                # more memory than the ids read; with a smaller queue, fetch again as soon
                # as it has room (the default waits 1 s).
                "queued.max.messages.kbytes": 4096,
                "fetch.max.bytes": 4 * 1024 * 1024,
                "fetch.queue.backoff.ms": 5,
            }
        )
        try:
            return self._read_with(consumer, assigned, kept)
        finally:
            consumer.close()

    def _read_with(
        self, consumer: Consumer, assigned: list[TopicPartition], kept: set[TopicPartition]
    ) -> Found:
        counts = _partition_counts(consumer, {*self.outputs, *self.outputs.values()})
        wanted: dict[tuple[str, int], str] = {}  # output partition → its raw topic
        for topic, partition in assigned:
            output = self.outputs.get(topic)
            if output is None or counts.get(output, 0) == 0:
                continue
            same = counts[output] == counts[topic]
            for q in [partition] if same else range(counts[output]):
                wanted[(output, q)] = topic
        ranges, highs = self._ranges(consumer, wanted, kept)
        found: Found = {tp: {} for tp in assigned}
        if ranges:
            self._consume(consumer, ranges, wanted, counts, found)
        self._loaded_to = highs
        return found

    def _ranges(
        self, consumer: Consumer, wanted: dict[tuple[str, int], str], kept: set[TopicPartition]
    ) -> tuple[dict[tuple[str, int], tuple[int, int]], dict[tuple[str, int], int]]:
        """The offsets to read per output partition, and each one's end now."""
        since = int((time.time() - self.window_hours * 3600) * 1000)
        times = consumer.offsets_for_times([RdPartition(t, q, since) for t, q in wanted], 30)
        ranges, highs = {}, {}
        for found in times:
            if found.error is not None:
                raise KafkaException(found.error)
            where = (found.topic, found.partition)
            low, high = consumer.get_watermark_offsets(RdPartition(*where), timeout=30)
            # A negative offset: nothing in the window.
            start = max(low, high - self.deduper.per_partition, found.offset, 0)
            if found.offset < 0:
                start = high
            raw_tp = (wanted[where], found.partition)
            if raw_tp in kept and where in self._loaded_to:
                start = max(start, self._loaded_to[where])
            highs[where] = high
            if start < high:
                ranges[where] = (start, high)
        return ranges, highs

    def _consume(
        self,
        consumer: Consumer,
        ranges: dict[tuple[str, int], tuple[int, int]],
        wanted: dict[tuple[str, int], str],
        counts: dict[str, int],
        found: Found,
    ) -> None:
        consumer.assign([RdPartition(t, q, start) for (t, q), (start, _) in ranges.items()])
        ends = {where: end for where, (_, end) in ranges.items()}
        placement = KeyHashPartitioner()  # where the receiver put the raw record
        idle_since = time.monotonic()
        while ends and time.monotonic() - idle_since < IDLE_SECONDS:
            messages = consume_ready(consumer, 5000, 0.5)
            if messages:
                idle_since = time.monotonic()
            for message in messages:
                if message.error() is not None:
                    continue
                record_id = _record_id(message.headers())
                if record_id is None:
                    continue
                topic, partition = message.topic() or "", message.partition() or 0
                raw = wanted[(topic, partition)]
                if counts[topic] != counts[raw]:
                    partition = placement(message.key(), list(range(counts[raw])), [])
                ids = found.get((raw, partition))
                if ids is not None:
                    ids[compact(record_id)] = None
            for tp in consumer.position([RdPartition(t, q) for t, q in ends]):
                if tp.offset >= ends[(tp.topic, tp.partition)]:
                    del ends[(tp.topic, tp.partition)]
        if ends:
            log.warning("dedupe load stopped short", extra={"partitions": sorted(map(str, ends))})


def _record_id(headers: Any) -> str | None:
    for name, value in headers or ():
        if name == Header.RECORD_ID and value:
            return bytes(value).decode()
    return None


def _partition_counts(consumer: Consumer, topics: set[str]) -> dict[str, int]:
    counts = {}
    for topic in topics:
        metadata = consumer.list_topics(topic, timeout=30).topics.get(topic)
        counts[topic] = len(metadata.partitions) if metadata and not metadata.error else 0
    return counts
