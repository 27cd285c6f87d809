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
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import IllegalStateError, KafkaError
from botocore.exceptions import BotoCoreError, ClientError

from common.config import KafkaSettings
from common.kafka import commit_within, manual_consumer, stop_consumer
from common.metrics import ServiceMetrics
from common.retry import until_done
from common.settings import load
from common.topics import Topics
from processors.lake.buffer import LakeBuffer, LakeObject

log = logging.getLogger(__name__)
# What a flush may fail with, Kafka's or S3's: logged, and the records read again.
FLUSH_ERRORS = (KafkaError, OSError, BotoCoreError, ClientError)

Put = Callable[[str, bytes], None]  # (key, body): blocking, raises when not stored


LAKE_NAMES: Final = {"group_id": "CALLSTREAM_LAKE_GROUP", "prefix": "CALLSTREAM_S3_PREFIX"}


@dataclass(frozen=True, slots=True)
class LakeSettings:
    group_id: str = "callstream-lake"
    prefix: str = ""
    flush_records: int = 50_000
    flush_seconds: float = 60.0
    metrics_port: int = 9103
    # Unhealthy (so an orchestrator restarts it) when nothing was flushed for this long
    # while the group has lag.
    stall_seconds: float = 600.0
    lag_every: float = 10.0  # how often the group's lag is measured
    # After the stop, how long the flush under way and the last one may take (S3 or Kafka
    # frozen); past it they are given up, nothing more is committed, the next owner re-reads.
    stop_flush_seconds: float = 10.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> LakeSettings:
        """`CALLSTREAM_LAKE_{FIELD}`, but for the names below (`common.settings`)."""
        return load(cls, env, "CALLSTREAM_LAKE_", LAKE_NAMES)


class LakeMetrics(ServiceMetrics):
    def __init__(self) -> None:
        super().__init__()
        self.records = self.counter("callstream_lake_records", "Records archived")
        self.objects = self.counter("callstream_lake_objects", "Objects written")
        self.bytes = self.counter("callstream_lake_bytes", "Compressed bytes written")
        self.lag = self.gauge(
            "callstream_lake_lag_records",
            "Records in the raw topics past the lake group's committed offsets",
        )
        self.since_flush = self.gauge(
            "callstream_lake_seconds_since_flush",
            "Seconds since the last flush that wrote and committed",
        )
        self.oldest_unflushed = self.gauge(
            "callstream_lake_oldest_unflushed_age_seconds",
            "Age of the oldest record read but not yet written (0: none)",
        )


class Lake:
    def __init__(self, consumer: AIOKafkaConsumer, put: Put, settings: LakeSettings) -> None:
        self.consumer = consumer
        self.put = put
        self.settings = settings
        self.buffer = LakeBuffer(settings.prefix)
        self.metrics = LakeMetrics()
        self.lock = asyncio.Lock()
        self.listener = _FlushOnRevoke(self)
        now = time.monotonic()
        self._flushed_at = now  # the last flush attempt: the next is due after flush_seconds
        self._progress_at = now  # the last flush that committed, or lag found to be 0
        self.oldest_at: float | None = None  # when the oldest record not yet written came
        self.lag: int | None = None

    async def run(self, stop: asyncio.Event) -> None:
        watcher = asyncio.create_task(self.watch())
        archiving = asyncio.create_task(self._archive(stop))
        stopped = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({archiving, stopped}, return_when=asyncio.FIRST_COMPLETED)
            await self._finish(archiving)
        finally:
            tasks = (watcher, archiving, stopped)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)  # what `_finish` raised is out

    async def _archive(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            batches = await self.consumer.getmany(timeout_ms=500, max_records=5000)
            async with self.lock:
                for records in batches.values():
                    for record in records:
                        self.buffer.add(record)
                if self.buffer.records and self.oldest_at is None:
                    self.oldest_at = time.monotonic()
                if self._due():
                    await self._flush_or_wait(stop)
        async with self.lock:
            await self._last_flush()

    async def _finish(self, archiving: asyncio.Task[None]) -> None:
        """After the stop: the flush under way and the last one, within `stop_flush_seconds`."""
        seconds = self.settings.stop_flush_seconds
        done, _ = await asyncio.wait({archiving}, timeout=seconds)
        if not done:
            log.warning(
                "the lake's flush did not finish within %s s of the stop; given up, the "
                "next owner re-reads what it held",
                seconds,
            )
            return
        archiving.result()  # what it raised

    def healthy(self) -> bool:
        """False once nothing was written for `stall_seconds` while the group has lag."""
        stalled = time.monotonic() - self._progress_at > self.settings.stall_seconds
        return not (stalled and (self.lag or 0) > 0)

    async def watch(self) -> None:
        """Measures the group's lag and the ages the metrics and the health check use."""
        while True:
            with contextlib.suppress(KafkaError, OSError):  # Kafka away: keep the last figure
                self.lag = await self._group_lag()
                if self.lag == 0:
                    self._progress_at = time.monotonic()
            now = time.monotonic()
            self.metrics.lag.set(self.lag or 0)
            self.metrics.since_flush.set(now - self._progress_at)
            oldest = self.oldest_at
            self.metrics.oldest_unflushed.set(0 if oldest is None else now - oldest)
            await asyncio.sleep(self.settings.lag_every)

    async def _group_lag(self) -> int:
        """End offsets minus the group's committed offsets, over every partition of the raw
        topics (not only this member's: a member that lost its partitions still sees it)."""
        consumer = self.consumer
        partitions = [
            TopicPartition(topic, partition)
            for topic in sorted(consumer.subscription())
            for partition in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        if not partitions:
            return 0
        ends = await consumer.end_offsets(partitions)
        lag = 0
        for tp in partitions:
            committed = await consumer.committed(tp)
            lag += max(0, ends[tp] - (committed or 0))
        return lag

    async def _flush_or_wait(self, stop: asyncio.Event) -> None:
        try:
            await self.flush()
        except FLUSH_ERRORS as err:
            log.warning("lake flush failed; re-reading and retrying: %r", err)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 2.0)

    async def _last_flush(self) -> None:
        """As the lake stops: what is buffered, written and committed once, not retried
        (Kafka or S3 may be gone for good); what is not committed the next owner reads."""
        try:
            await self.flush()
        except FLUSH_ERRORS as err:
            log.warning("last lake flush failed; the next owner re-reads: %r", err)

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
            await commit_within(self.consumer, offsets)
        except Exception:
            # Read again, written again (the same names), committed by a later flush.
            self._rewind(objects)
            raise
        self._progress_at = time.monotonic()
        if not self.buffer.records:
            self.oldest_at = None
        log.info(
            "lake flush",
            extra={"objects": len(objects), "records": sum(len(o.lines) for o in objects)},
        )

    def _rewind(self, objects: list[LakeObject]) -> None:
        """Not written or not committed: read those records again (from the first of each
        partition)."""
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
            except FLUSH_ERRORS as err:
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
    try:  # a start-up cut short (a stop signal while Kafka is away) closes it too
        await until_done(client.start, "starting the lake's consumer", retry_on=(KafkaError,))
        yield lake
    finally:
        await stop_consumer(client)
