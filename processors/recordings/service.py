"""The recordings service: enriched CDRs with a recording → S3, announced on a topic.

A recording that is not ready (or anything else retriable failing) is rescheduled on
the retry topic with a not-before time and exponential backoff, so it blocks nothing
and survives restarts; after the retry window it goes to the dead-letter topic. Offsets
are committed only after each record's outcome (announcement, retry or dead letter) is
acknowledged by Kafka.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import aiohttp
import msgspec
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError
from botocore.exceptions import BotoCoreError, ClientError
from prometheus_client import Counter

from common.config import KafkaSettings
from common.kafka import durable_producer, manual_consumer
from common.records import CdrRecord, RecordingRecord
from common.retry import until_done
from common.settings import load
from common.topics import Header, Topics, dead_letter_headers
from processors.recordings.archive import S3Archive
from processors.recordings.fetch import UnsafeKeyError, fetch_and_archive
from processors.recordings.partitions import PartitionWorkers
from processors.runtime import PipeMetrics, export_lag
from yunhu.api import (
    Credentials,
    DownloadPolicy,
    GuardedResolver,
    TokenManager,
    YunhuClient,
    YunhuError,
)
from yunhu.tenants import Tenant

log = logging.getLogger(__name__)

_CDR: Final = msgspec.json.Decoder(CdrRecord)
_ENCODER: Final = msgspec.json.Encoder()
SERVICE: Final = b"recordings"


RECORDINGS_NAMES: Final = {
    "group_id": "CALLSTREAM_RECORDINGS_GROUP",
    "s3_prefix": "CALLSTREAM_S3_PREFIX",
    "max_recording_bytes": "CALLSTREAM_RECORDINGS_MAX_BYTES",
}


@dataclass(frozen=True, slots=True)
class RecordingsSettings:
    group_id: str = "callstream-recordings"
    concurrency: int = 8
    per_tenant: int = 4
    retry_window: float = 30 * 60.0
    first_backoff: float = 5.0
    max_backoff: float = 300.0
    max_wait: float = 5.0  # longest a not-yet-due retry holds its partition
    s3_prefix: str = ""
    api_timeout: float = 15.0
    metrics_port: int = 9102
    max_poll_interval_ms: int = 300_000
    max_recording_bytes: int = 2 << 30  # larger: the upload is aborted, the CDR dead-lettered

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> RecordingsSettings:
        """`CALLSTREAM_RECORDINGS_{FIELD}`, but for the names below (`common.settings`)."""
        return load(cls, env, "CALLSTREAM_RECORDINGS_", RECORDINGS_NAMES)


@dataclass
class Outcome:
    archived: int = 0
    retried: int = 0
    dead: int = 0
    skipped: int = 0


def retries_counter(metrics: PipeMetrics) -> Counter:
    return Counter(
        "callstream_recordings_retries",
        "Recordings rescheduled on the retry topic",
        registry=metrics.registry,
    )


class Recorder:
    def __init__(
        self,
        topics: Topics,
        *,
        tenants: dict[str, Tenant],
        session: aiohttp.ClientSession,
        archive: S3Archive,
        producer: AIOKafkaProducer,
        settings: RecordingsSettings,
    ) -> None:
        self.topics = topics
        self.tenants = tenants
        self.archive = archive
        self.producer = producer
        self.settings = settings
        self.clients = {
            code: YunhuClient(session, t.api_url, timeout=settings.api_timeout)
            for code, t in tenants.items()
        }
        self.tokens = {
            code: TokenManager(self.clients[code], Credentials(t.appid, t.accesskey), tenant=code)
            for code, t in tenants.items()
        }
        self.slots = asyncio.Semaphore(settings.concurrency)
        self.tenant_slots: defaultdict[str, asyncio.Semaphore] = defaultdict(
            lambda: asyncio.Semaphore(settings.per_tenant)
        )
        self.outcome = Outcome()
        self.metrics = PipeMetrics()
        self.retries = retries_counter(self.metrics)

    async def handle(self, record: Any) -> None:
        """Returns once this record's outcome is durable in Kafka."""
        self.metrics.consumed.labels(record.topic).inc()
        try:
            cdr = _CDR.decode(record.value or b"")
        except msgspec.DecodeError as err:
            await self._dead(record, "undecodable", str(err), 1)
            return
        if not cdr.has_recording:
            self.outcome.skipped += 1
            return
        headers = dict(record.headers)
        attempts = int(headers.get(Header.RETRY_ATTEMPTS, b"0")) + 1
        first_at = int(headers.get(Header.RETRY_FIRST_AT, b"0")) / 1000 or time.time()
        not_before = int(headers.get(Header.RETRY_NOT_BEFORE, b"0")) / 1000
        wait = not_before - time.time()
        if wait > 0:
            await asyncio.sleep(min(wait, self.settings.max_wait))
            if not_before > time.time():  # still early: back in the queue, unchanged
                await self._send(
                    self.topics.recordings_retry, record.key, record.value, record.headers
                )
                return
        tokens = self.tokens.get(cdr.tenant)
        if tokens is None:
            await self._dead(record, "unknown tenant", cdr.tenant, attempts)
            return
        client = self.clients[cdr.tenant]
        async with self.slots, self.tenant_slots[cdr.tenant]:
            try:
                archived = await fetch_and_archive(
                    cdr,
                    tokens,
                    client,
                    self.archive,
                    policy=DownloadPolicy.for_tenant(self.tenants[cdr.tenant], cdr.downloadip),
                    max_bytes=self.settings.max_recording_bytes,
                    prefix=self.settings.s3_prefix,
                )
            except (
                YunhuError, UnsafeKeyError, ClientError, BotoCoreError, OSError, TimeoutError
            ) as err:  # fmt: skip
                await self._failed(record, cdr, err, attempts, first_at)
                return
        announcement = RecordingRecord(
            record_id=cdr.record_id,
            tenant=cdr.tenant,
            uuid=cdr.uuid,
            cdr_id=cdr.cdr_id,
            bucket=archived.bucket,
            key=archived.key,
            size=archived.size,
            sha256=archived.sha256,
            content_type=archived.content_type,
            source_file=cdr.recording_file,
            archived_at=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
            attempts=attempts,
        )
        await self._send(
            self.topics.recordings, cdr.uuid.encode(), _ENCODER.encode(announcement),
            [(Header.RECORD_ID, cdr.record_id.encode()), (Header.TENANT, cdr.tenant.encode())],
        )  # fmt: skip
        self.outcome.archived += 1

    async def _failed(
        self, record: Any, cdr: CdrRecord, err: Exception, attempts: int, first_at: float
    ) -> None:
        retriable = getattr(err, "retriable", True)
        if not retriable or time.time() - first_at > self.settings.retry_window:
            await self._dead(record, type(err).__name__, str(err), attempts)
            return
        backoff = min(self.settings.max_backoff, self.settings.first_backoff * 2 ** (attempts - 1))
        not_before = time.time() + backoff * random.uniform(0.8, 1.2)  # noqa: S311
        headers = [(k, v) for k, v in record.headers if not k.startswith("retry-")]
        headers += [
            (Header.RETRY_ATTEMPTS, str(attempts).encode()),
            (Header.RETRY_FIRST_AT, str(int(first_at * 1000)).encode()),
            (Header.RETRY_NOT_BEFORE, str(int(not_before * 1000)).encode()),
        ]
        log.info(
            "recording rescheduled",
            extra={"uuid": cdr.uuid, "attempts": attempts, "error": str(err)[:200]},
        )
        await self._send(self.topics.recordings_retry, record.key, record.value, headers)
        self.outcome.retried += 1
        self.retries.inc()

    async def _dead(self, record: Any, reason: str, detail: str, attempts: int) -> None:
        headers = dead_letter_headers(
            record, service=SERVICE, reason=reason, detail=detail[:1000], attempts=attempts
        )
        log.warning("recording given up", extra={"reason": reason, "detail": detail[:200]})
        await self._send(self.topics.deadletter, record.key, record.value, headers)
        self.metrics.deadletters.labels(self.topics.deadletter).inc()
        self.outcome.dead += 1

    async def _send(self, topic: str, key: bytes | None, value: bytes | None, headers: Any) -> None:
        await self.producer.send_and_wait(topic, value, key=key, headers=list(headers))
        self.metrics.produced.labels(topic).inc()


async def consume(
    consumer: AIOKafkaConsumer, workers: PartitionWorkers, metrics: PipeMetrics,
    stop: asyncio.Event,
) -> None:  # fmt: skip
    """Poll continuously; partitions in parallel, each partition's records in order."""
    while not stop.is_set():
        batch = await consumer.getmany(timeout_ms=200, max_records=20)
        for tp, records in batch.items():
            workers.start(tp, records)
        await workers.settle()
        await export_lag(consumer, metrics)
    await workers.settle(wait=True)


def subscription(topics: Topics) -> list[str]:
    return [topics.cdr, topics.recordings_retry]


@dataclass
class RecordingsService:
    recorder: Recorder
    consumer: AIOKafkaConsumer
    workers: PartitionWorkers

    async def run(self, stop: asyncio.Event) -> None:
        await consume(self.consumer, self.workers, self.recorder.metrics, stop)


@contextlib.asynccontextmanager
async def recordings_service(
    kafka: KafkaSettings,
    topics: Topics,
    *,
    tenants: dict[str, Tenant],
    archive: S3Archive,
    settings: RecordingsSettings,
) -> AsyncIterator[RecordingsService]:
    """The whole service, started; stopped (producer flushed, group left) on exit."""
    producer = durable_producer(kafka)
    consumer = manual_consumer(
        kafka, group_id=settings.group_id, max_poll_interval_ms=settings.max_poll_interval_ms
    )
    async with contextlib.AsyncExitStack() as stack:
        await until_done(producer.start, "starting the producer", retry_on=(KafkaError,))
        stack.push_async_callback(producer.stop)
        listed = [host for tenant in tenants.values() for host in tenant.download_hosts]
        connector = aiohttp.TCPConnector(resolver=GuardedResolver(listed))
        session = await stack.enter_async_context(aiohttp.ClientSession(connector=connector))
        recorder = Recorder(
            topics, tenants=tenants, session=session, archive=archive, producer=producer,
            settings=settings,
        )  # fmt: skip
        workers = PartitionWorkers(consumer, recorder.handle)
        consumer.subscribe(subscription(topics), listener=workers)
        await until_done(consumer.start, "starting the consumer", retry_on=(KafkaError,))
        stack.push_async_callback(consumer.stop)
        yield RecordingsService(recorder, consumer, workers)
