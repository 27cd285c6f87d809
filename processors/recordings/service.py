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
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
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
from common.kafka import durable_producer, manual_consumer, stop_consumer, stop_producer
from common.records import CdrRecord, RecordingRecord
from common.retry import until_done
from common.settings import load
from common.topics import Header, Topics, dead_letter_headers
from processors.recordings.archive import Archived, S3Archive
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
    # At a stop, how long the batches under way get to finish; those still running then
    # are cancelled and read again by the next owner (deploy/ stops at 40).
    stop_finish_seconds: float = 20.0

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


@dataclass(frozen=True, slots=True)
class RetryState:
    """Where a CDR is in its retries, from the headers the retry topic carries."""

    attempts: int  # this one included
    first_at: float  # epoch seconds of the first attempt
    not_before: float  # epoch seconds; 0 when it may go now

    @classmethod
    def of(cls, headers: Mapping[str, bytes], now: float) -> RetryState:
        first_at = int(headers.get(Header.RETRY_FIRST_AT, b"0")) / 1000 or now
        return cls(
            attempts=int(headers.get(Header.RETRY_ATTEMPTS, b"0")) + 1,
            first_at=first_at,
            not_before=int(headers.get(Header.RETRY_NOT_BEFORE, b"0")) / 1000,
        )

    def next_headers(
        self, headers: list[tuple[str, bytes]], backoff: float
    ) -> list[tuple[str, bytes]]:
        """`headers` with this attempt's retry headers, due `backoff` seconds from now."""
        not_before = time.time() + backoff
        kept = [(k, v) for k, v in headers if not k.startswith("retry-")]
        return [
            *kept,
            (Header.RETRY_ATTEMPTS, str(self.attempts).encode()),
            (Header.RETRY_FIRST_AT, str(int(self.first_at * 1000)).encode()),
            (Header.RETRY_NOT_BEFORE, str(int(not_before * 1000)).encode()),
        ]


# `fetch_and_archive`, or a fake of it in unit tests.
Fetch = Callable[..., Awaitable[Archived]]


# What a failed fetch or upload raises; it is tried again unless its `retriable` is False.
FETCH_ERRORS: Final = (
    YunhuError,
    UnsafeKeyError,
    ClientError,
    BotoCoreError,
    OSError,
    TimeoutError,
)


class Recorder:
    """One CDR at a time, in the recordings flow: decode → due yet? → fetch and archive
    (throttled per tenant) → announce; or reschedule, or dead-letter. `handle` returns
    once the record's outcome is acknowledged by Kafka."""

    def __init__(
        self,
        topics: Topics,
        *,
        tenants: dict[str, Tenant],
        session: aiohttp.ClientSession,
        archive: S3Archive,
        producer: AIOKafkaProducer,
        settings: RecordingsSettings,
        fetch: Fetch = fetch_and_archive,
    ) -> None:
        self.topics = topics
        self.tenants = tenants
        self.archive = archive
        self.producer = producer
        self.settings = settings
        self.fetch = fetch
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
        self.metrics.consumed.labels(record.topic).inc()
        cdr = await self._decoded(record)
        if cdr is None:
            return
        if not cdr.has_recording:
            self.outcome.skipped += 1
            return
        retry = RetryState.of(dict(record.headers), time.time())
        if not await self._due(record, retry):
            return
        if cdr.tenant not in self.tenants:
            await self._dead(record, "unknown tenant", cdr.tenant, retry.attempts)
            return
        try:
            archived = await self._archive(cdr)
        except FETCH_ERRORS as err:
            await self._failed(record, cdr, err, retry)
            return
        await self._announce(cdr, archived, retry.attempts)

    async def _decoded(self, record: Any) -> CdrRecord | None:
        """The CDR, or None once an undecodable record is dead-lettered."""
        try:
            return _CDR.decode(record.value or b"")
        except msgspec.DecodeError as err:
            await self._dead(record, "undecodable", str(err), 1)
            return None

    async def _due(self, record: Any, retry: RetryState) -> bool:
        """Whether a rescheduled CDR may be tried now (waiting up to `max_wait` for it);
        one still early goes back to the retry topic unchanged."""
        wait = retry.not_before - time.time()
        if wait <= 0:
            return True
        await asyncio.sleep(min(wait, self.settings.max_wait))
        if retry.not_before <= time.time():
            return True
        await self._send(self.topics.recordings_retry, record.key, record.value, record.headers)
        return False

    async def _archive(self, cdr: CdrRecord) -> Archived:
        async with self.slots, self.tenant_slots[cdr.tenant]:
            return await self.fetch(
                cdr,
                self.tokens[cdr.tenant],
                self.clients[cdr.tenant],
                self.archive,
                policy=DownloadPolicy.for_tenant(self.tenants[cdr.tenant], cdr.downloadip),
                max_bytes=self.settings.max_recording_bytes,
                prefix=self.settings.s3_prefix,
            )

    async def _announce(self, cdr: CdrRecord, archived: Archived, attempts: int) -> None:
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
        headers = [(Header.RECORD_ID, cdr.record_id.encode()), (Header.TENANT, cdr.tenant.encode())]
        value = _ENCODER.encode(announcement)
        await self._send(self.topics.recordings, cdr.uuid.encode(), value, headers)
        self.outcome.archived += 1

    async def _failed(self, record: Any, cdr: CdrRecord, err: Exception, retry: RetryState) -> None:
        """Rescheduled with backoff while it may still succeed; dead-lettered when not."""
        retriable = getattr(err, "retriable", True)
        if not retriable or time.time() - retry.first_at > self.settings.retry_window:
            await self._dead(record, type(err).__name__, str(err), retry.attempts)
            return
        settings = self.settings
        backoff = min(settings.max_backoff, settings.first_backoff * 2 ** (retry.attempts - 1))
        jittered = backoff * random.uniform(0.8, 1.2)  # noqa: S311 - spreading retries
        headers = retry.next_headers(list(record.headers), jittered)
        log.info(
            "recording rescheduled",
            extra={"uuid": cdr.uuid, "attempts": retry.attempts, "error": str(err)[:200]},
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
    consumer: AIOKafkaConsumer,
    workers: PartitionWorkers,
    metrics: PipeMetrics,
    stop: asyncio.Event,
    finish_within: float,
) -> None:
    """Poll continuously; partitions in parallel, each partition's records in order; once
    stopped, the batches under way get `finish_within` seconds."""
    while not stop.is_set():
        batch = await consumer.getmany(timeout_ms=200, max_records=20)
        for tp, records in batch.items():
            workers.start(tp, records)
        await workers.settle()
        await export_lag(consumer, metrics)
    await workers.finish(finish_within)


def subscription(topics: Topics) -> list[str]:
    return [topics.cdr, topics.recordings_retry]


@dataclass
class RecordingsService:
    recorder: Recorder
    consumer: AIOKafkaConsumer
    workers: PartitionWorkers

    async def run(self, stop: asyncio.Event) -> None:
        finish_within = self.recorder.settings.stop_finish_seconds
        await consume(self.consumer, self.workers, self.recorder.metrics, stop, finish_within)


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
    # Each client's stop is pushed before its start: a start-up cut short (a stop signal
    # while Kafka is away) closes it too.
    async with contextlib.AsyncExitStack() as stack:
        producer = durable_producer(kafka)
        stack.push_async_callback(stop_producer, producer)
        await until_done(producer.start, "starting the producer", retry_on=(KafkaError,))
        listed = [host for tenant in tenants.values() for host in tenant.download_hosts]
        connector = aiohttp.TCPConnector(resolver=GuardedResolver(listed))
        session = await stack.enter_async_context(aiohttp.ClientSession(connector=connector))
        recorder = Recorder(
            topics,
            tenants=tenants,
            session=session,
            archive=archive,
            producer=producer,
            settings=settings,
        )
        consumer = manual_consumer(
            kafka, group_id=settings.group_id, max_poll_interval_ms=settings.max_poll_interval_ms
        )
        stack.push_async_callback(stop_consumer, consumer)
        workers = PartitionWorkers(consumer, recorder.handle)
        consumer.subscribe(subscription(topics), listener=workers)
        await until_done(consumer.start, "starting the consumer", retry_on=(KafkaError,))
        yield RecordingsService(recorder, consumer, workers)
