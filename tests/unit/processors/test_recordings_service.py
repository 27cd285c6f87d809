"""The recordings flow, step by step, with a fake producer and a fake fetch: decode,
due yet, fetch and archive, announce; or reschedule with backoff, or dead-letter."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, cast

import aiohttp
import msgspec
import pytest
from aiokafka import AIOKafkaProducer

from common.records import CdrRecord, RecordingRecord
from common.topics import Header, Topics
from devkit.sim import sim_tenants
from processors.recordings.archive import Archived, S3Archive
from processors.recordings.fetch import UnsafeKeyError
from processors.recordings.service import Recorder, RecordingsSettings, RetryState
from tests.support.records import a_cdr
from yunhu.api import RecordingNotReadyError

TOPICS = Topics()


@dataclass(frozen=True)
class Rec:
    value: bytes | None
    headers: list[tuple[str, bytes]] = field(default_factory=list)
    topic: str = TOPICS.cdr
    partition: int = 0
    offset: int = 7
    key: bytes | None = b"call-1"


@dataclass
class FakeProducer:
    sent: list[tuple[str, bytes | None, dict[str, bytes]]] = field(default_factory=list)

    async def send_and_wait(
        self, topic: str, value: bytes | None, key: bytes | None, headers: list[Any]
    ) -> None:
        self.sent.append((topic, value, dict(headers)))


@dataclass
class FakeFetch:
    error: Exception | None = None
    calls: list[str] = field(default_factory=list)

    async def __call__(self, cdr: CdrRecord, *args: Any, **kwargs: Any) -> Archived:
        self.calls.append(cdr.uuid)
        if self.error is not None:
            raise self.error
        return Archived("bucket", f"recordings/{cdr.uuid}.wav", 44, "ab" * 32, "audio/wav")


def cdr(tenant: str = "9024", recording: str = "20261129/9024/a.wav") -> CdrRecord:
    return a_cdr(
        tenant=tenant,
        direction="inbound",
        ring_seconds=1,
        talk_seconds=3,
        has_recording=bool(recording),
        recording_file=recording,
    )


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


def recorder(
    session: aiohttp.ClientSession, fetch: FakeFetch, **settings: Any
) -> tuple[Recorder, FakeProducer]:
    producer = FakeProducer()
    made = Recorder(
        TOPICS,
        tenants=sim_tenants(),
        session=session,
        archive=cast(S3Archive, None),  # only handed to `fetch`
        producer=cast(AIOKafkaProducer, producer),
        settings=RecordingsSettings(**settings),
        fetch=fetch,
    )
    return made, producer


async def test_an_archived_recording_is_announced_on_its_topic(
    session: aiohttp.ClientSession,
) -> None:
    fetch = FakeFetch()
    rec, producer = recorder(session, fetch)
    await rec.handle(Rec(msgspec.json.encode(cdr())))
    [(topic, value, headers)] = producer.sent
    assert topic == TOPICS.recordings
    announced = msgspec.json.decode(value or b"", type=RecordingRecord)
    assert (announced.uuid, announced.key, announced.attempts) == ("u1", "recordings/u1.wav", 1)
    assert headers == {Header.RECORD_ID: b"cdr:9024:u1:1", Header.TENANT: b"9024"}
    assert rec.outcome.archived == 1


async def test_an_undecodable_record_is_dead_lettered_as_sent(
    session: aiohttp.ClientSession,
) -> None:
    rec, producer = recorder(session, FakeFetch())
    await rec.handle(Rec(b"{not json"))
    [(topic, value, headers)] = producer.sent
    assert (topic, value) == (TOPICS.deadletter, b"{not json")
    assert headers[Header.DLQ_REASON] == b"undecodable"
    assert headers[Header.DLQ_SOURCE_OFFSET] == b"7"


async def test_a_call_without_recording_is_skipped_and_nothing_sent(
    session: aiohttp.ClientSession,
) -> None:
    fetch = FakeFetch()
    rec, producer = recorder(session, fetch)
    await rec.handle(Rec(msgspec.json.encode(cdr(recording=""))))
    assert producer.sent == []
    assert fetch.calls == []
    assert rec.outcome.skipped == 1


async def test_an_unknown_tenant_is_dead_lettered_without_fetching(
    session: aiohttp.ClientSession,
) -> None:
    fetch = FakeFetch()
    rec, producer = recorder(session, fetch)
    await rec.handle(Rec(msgspec.json.encode(cdr(tenant="5555"))))
    assert fetch.calls == []
    [(topic, _, headers)] = producer.sent
    assert topic == TOPICS.deadletter
    assert headers[Header.DLQ_REASON] == b"unknown tenant"


async def test_a_retriable_failure_is_rescheduled_with_growing_backoff(
    session: aiohttp.ClientSession,
) -> None:
    rec, producer = recorder(
        session, FakeFetch(RecordingNotReadyError("404")), first_backoff=10.0, max_backoff=300.0
    )
    first_at = int((time.time() - 60) * 1000)
    earlier = [(Header.RETRY_ATTEMPTS, b"2"), (Header.RETRY_FIRST_AT, str(first_at).encode())]
    before = time.time()
    await rec.handle(Rec(msgspec.json.encode(cdr()), headers=[("tenant", b"9024"), *earlier]))
    [(topic, _, headers)] = producer.sent
    assert topic == TOPICS.recordings_retry
    assert headers[Header.RETRY_ATTEMPTS] == b"3"
    assert headers[Header.RETRY_FIRST_AT] == str(first_at).encode()
    delay = int(headers[Header.RETRY_NOT_BEFORE]) / 1000 - before
    assert 0.8 * 40 - 1 <= delay <= 1.2 * 40 + 1, "third attempt: 10 s doubled twice, ±20 %"
    assert headers["tenant"] == b"9024"
    assert rec.outcome.retried == 1


async def test_a_failure_that_cannot_succeed_or_one_past_the_window_is_dead_lettered(
    session: aiohttp.ClientSession,
) -> None:
    rec, producer = recorder(session, FakeFetch(UnsafeKeyError("uuid '../x'")))
    await rec.handle(Rec(msgspec.json.encode(cdr())))
    late, late_producer = recorder(
        session, FakeFetch(RecordingNotReadyError("404")), retry_window=60.0
    )
    long_ago = str(int((time.time() - 3600) * 1000)).encode()
    await late.handle(Rec(msgspec.json.encode(cdr()), [(Header.RETRY_FIRST_AT, long_ago)]))
    reasons = []
    for sent in (producer.sent, late_producer.sent):
        [(topic, _, headers)] = sent
        assert topic == TOPICS.deadletter
        reasons.append(headers[Header.DLQ_REASON])
    assert reasons == [b"UnsafeKeyError", b"RecordingNotReadyError"]


async def test_a_retry_still_early_goes_back_unchanged_without_fetching(
    session: aiohttp.ClientSession,
) -> None:
    fetch = FakeFetch()
    rec, producer = recorder(session, fetch, max_wait=0.05)
    due = str(int((time.time() + 600) * 1000)).encode()
    record = Rec(msgspec.json.encode(cdr()), [(Header.RETRY_NOT_BEFORE, due)])
    await rec.handle(record)
    assert fetch.calls == []
    [(topic, value, headers)] = producer.sent
    assert (topic, value, headers) == (TOPICS.recordings_retry, record.value, dict(record.headers))


async def test_a_retry_due_within_the_wait_is_fetched_then(
    session: aiohttp.ClientSession,
) -> None:
    fetch = FakeFetch()
    rec, producer = recorder(session, fetch, max_wait=2.0)
    due = str(int((time.time() + 0.2) * 1000)).encode()
    await rec.handle(Rec(msgspec.json.encode(cdr()), [(Header.RETRY_NOT_BEFORE, due)]))
    assert fetch.calls == ["u1"]
    assert producer.sent[0][0] == TOPICS.recordings


def test_retry_state_reads_the_headers_and_starts_fresh_without_them() -> None:
    fresh = RetryState.of({}, now=1000.0)
    assert (fresh.attempts, fresh.first_at, fresh.not_before) == (1, 1000.0, 0.0)
    later = RetryState.of(
        {Header.RETRY_ATTEMPTS: b"4", Header.RETRY_FIRST_AT: b"5000", "x": b"y"}, now=9.0
    )
    assert (later.attempts, later.first_at) == (5, 5.0)
    headers = later.next_headers([("retry-attempts", b"4"), ("tenant", b"7001")], 30.0)
    assert [k for k, _ in headers].count(Header.RETRY_ATTEMPTS) == 1
    assert dict(headers)[Header.RETRY_ATTEMPTS] == b"5"
    assert dict(headers)["tenant"] == b"7001"
