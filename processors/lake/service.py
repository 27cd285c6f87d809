"""`callstream lake`: the raw topics, archived to S3 as gzip NDJSON objects.

Records are buffered per object (topic, tenant, hour, partition); every flush writes all
buffered objects, then commits the offsets after them, so a crash re-reads from the last
flush and rewrites objects under the same names (the start offset is in the name).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import IllegalStateError, KafkaError
from botocore.exceptions import BotoCoreError, ClientError
from prometheus_client import CollectorRegistry, Counter

from common.config import KafkaSettings
from common.kafka import manual_consumer
from common.topics import Topics
from processors.lake.buffer import LakeBuffer, LakeObject

log = logging.getLogger(__name__)

Put = Callable[[str, bytes], None]  # (key, body): blocking, raises when not stored


@dataclass(frozen=True, slots=True)
class LakeSettings:
    group_id: str = "callstream-lake"
    prefix: str = ""
    flush_records: int = 50_000
    flush_seconds: float = 60.0
    metrics_port: int = 9103


@dataclass
class LakeMetrics:
    registry: CollectorRegistry = field(
        default_factory=lambda: CollectorRegistry(auto_describe=True)
    )

    def __post_init__(self) -> None:
        r = self.registry
        self.records = Counter("callstream_lake_records", "Records archived", registry=r)
        self.objects = Counter("callstream_lake_objects", "Objects written", registry=r)
        self.bytes = Counter("callstream_lake_bytes", "Compressed bytes written", registry=r)


class Lake:
    def __init__(self, consumer: AIOKafkaConsumer, put: Put, settings: LakeSettings) -> None:
        self.consumer = consumer
        self.put = put
        self.settings = settings
        self.buffer = LakeBuffer(settings.prefix)
        self.metrics = LakeMetrics()
        self.lock = asyncio.Lock()
        self.listener = _FlushOnRevoke(self)
        self._flushed_at = time.monotonic()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            batches = await self.consumer.getmany(timeout_ms=500, max_records=5000)
            async with self.lock:
                for records in batches.values():
                    for record in records:
                        self.buffer.add(record)
                if self._due():
                    await self._flush_or_wait(stop)
        async with self.lock:
            await self.flush()

    async def _flush_or_wait(self, stop: asyncio.Event) -> None:
        try:
            await self.flush()
        except (KafkaError, OSError, BotoCoreError, ClientError) as err:
            log.warning("lake flush failed; re-reading and retrying: %r", err)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 2.0)

    def _due(self) -> bool:
        if self.buffer.records >= self.settings.flush_records:
            return True
        waited = time.monotonic() - self._flushed_at
        return self.buffer.records > 0 and waited >= self.settings.flush_seconds

    async def flush(self) -> None:
        """Write every buffered object, then commit past them. Callers hold `lock`."""
        self._flushed_at = time.monotonic()
        objects, offsets = self.buffer.take()
        if not objects:
            return
        try:
            await asyncio.gather(*(self._write(o) for o in objects))
        except Exception:
            self._rewind(objects)
            raise
        await self.consumer.commit(offsets)
        log.info(
            "lake flush",
            extra={"objects": len(objects), "records": sum(len(o.lines) for o in objects)},
        )

    def _rewind(self, objects: list[LakeObject]) -> None:
        """Not written: read those records again (from the first of each partition)."""
        starts: dict[TopicPartition, int] = {}
        for item in objects:
            first = starts.setdefault(item.partition, item.start_offset)
            starts[item.partition] = min(first, item.start_offset)
        for tp, offset in starts.items():
            with contextlib.suppress(IllegalStateError):  # no longer ours
                self.consumer.seek(tp, offset)

    async def _write(self, item: LakeObject) -> None:
        body = await asyncio.to_thread(item.body)
        await asyncio.to_thread(self.put, item.key, body)
        self.metrics.objects.inc()
        self.metrics.records.inc(len(item.lines))
        self.metrics.bytes.inc(len(body))


class _FlushOnRevoke(ConsumerRebalanceListener):  # type: ignore[misc]
    """Before partitions go to another member, what was read from them is written and
    committed; if that fails, it is forgotten (the next owner reads it again)."""

    def __init__(self, lake: Lake) -> None:
        self.lake = lake

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        async with self.lake.lock:
            try:
                await self.lake.flush()
            except (KafkaError, OSError, BotoCoreError, ClientError) as err:
                log.warning("lake flush on revoke failed; next owner re-reads: %r", err)
                self.lake.buffer.drop(revoked)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        log.info("partitions assigned", extra={"partitions": [str(tp) for tp in assigned]})


@contextlib.asynccontextmanager
async def lake_service(
    kafka: KafkaSettings, topics: Topics, put: Put, settings: LakeSettings, **consumer: Any
) -> AsyncIterator[Lake]:
    """The lake consumer, started; its group left on exit."""
    client = manual_consumer(
        kafka, group_id=settings.group_id, max_poll_interval_ms=600_000, **consumer
    )
    lake = Lake(client, put, settings)
    client.subscribe([topics.callstate_raw, topics.cdr_raw], listener=lake.listener)
    await client.start()
    try:
        yield lake
    finally:
        await client.stop()
