"""Recordings: simulator → S3 with the simulator's bytes, announced, retried when not ready."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import random
import time
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import msgspec
import pytest

from common.kafka import durable_producer
from common.records import CdrRecord, Origin, RecordingRecord
from common.s3 import make_client
from common.topics import Topics
from devkit.sim import running_simulator
from processors.enrich.transform import cdr_record
from processors.recordings.archive import S3Archive
from processors.recordings.service import (
    RecordingsService,
    RecordingsSettings,
    recordings_service,
)
from tests.integration.conftest import TopicSetFactory
from tests.support.kafka import read_topic
from tests.support.private_s3 import PrivateS3
from tests.support.running import running
from tests.support.services import Services
from yunhu.callbacks import Cdr, decode_cdr
from yunhu.sim.api import Simulator
from yunhu.sim.audio import wav_bytes
from yunhu.sim.settings import Faults, SimSettings
from yunhu.sim.traffic import callbacks, plan_call
from yunhu.tenants import Tenant

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

TZ = SimSettings().tz


def answered_cdrs(sim: Simulator, count: int, seed: int) -> list[CdrRecord]:
    rng = random.Random(seed)
    out: list[CdrRecord] = []
    index = 0
    while len(out) < count:
        index += 1
        code = ("9024", "7001", "20000013")[index % 3]
        plan = plan_call(rng, code, index, int(time.time()))
        if not plan.answered:
            continue
        sim.add_recording(plan.recordfilename(TZ), code, plan.talk)
        raw = decode_cdr(callbacks(plan, TZ)[-1].body)
        assert isinstance(raw, Cdr)
        where = Origin(
            f"ev{index}", "2026-11-26T00:00:00Z", int(time.time() * 1000), "raw", 0, index
        )
        out.append(cdr_record(raw, code, where, TZ))
    return out


def tenants_for(sim: Simulator) -> dict[str, Tenant]:
    return {
        c: msgspec.structs.replace(t, api_url=sim.settings.base_url) for c, t in sim.tenants.items()
    }


@contextlib.asynccontextmanager
async def running_recorder(
    services: Services,
    topics: Topics,
    sim: Simulator,
    settings: RecordingsSettings,
    s3_client: S3Client,
    *,
    bucket: str | None = None,
) -> AsyncIterator[RecordingsService]:
    archive = S3Archive(s3_client, bucket or services.s3.bucket, part_size=5 << 20)
    settings = dataclasses.replace(settings, group_id=f"rec-{uuid.uuid4().hex}")
    async with (
        recordings_service(
            services.kafka, topics, tenants=tenants_for(sim), archive=archive, settings=settings
        ) as service,
        running(service.run),
    ):
        yield service


async def publish_cdrs(services: Services, topics: Topics, cdrs: list[CdrRecord]) -> None:
    producer = durable_producer(services.kafka)
    await producer.start()
    try:
        for cdr in cdrs:
            await producer.send_and_wait(
                topics.cdr,
                msgspec.json.encode(cdr),
                key=cdr.uuid.encode(),
                headers=[("record-id", cdr.record_id.encode())],
            )
    finally:
        await producer.stop()


async def wait_announced(
    services: Services, topics: Topics, count: int, within: float
) -> list[RecordingRecord]:
    async with asyncio.timeout(within):
        while True:
            records = await read_topic(services.kafka, topics.recordings)
            if len(records) >= count:
                return [msgspec.json.decode(r.value, type=RecordingRecord) for r in records]
            await asyncio.sleep(0.5)


async def test_every_recording_is_archived_with_the_simulators_bytes(
    services: Services, topic_set: TopicSetFactory, s3_client: S3Client, s3_prefix: str
) -> None:
    _, topics = await topic_set()
    async with running_simulator() as sim:
        cdrs = answered_cdrs(sim, 6, seed=1)
        await publish_cdrs(services, topics, cdrs)
        settings = RecordingsSettings(s3_prefix=s3_prefix)
        async with running_recorder(services, topics, sim, settings, s3_client):
            sim.state.tokens.clear()  # the platform invalidates every token mid-run
            announced = await wait_announced(services, topics, len(cdrs), 60)
    assert sorted(a.uuid for a in announced) == sorted(c.uuid for c in cdrs)
    for cdr, item in zip(
        sorted(cdrs, key=lambda c: c.uuid), sorted(announced, key=lambda a: a.uuid), strict=True
    ):
        expected = wav_bytes(cdr.recording_file, cdr.talk_seconds or 0)
        assert item.sha256 == hashlib.sha256(expected).hexdigest()
        assert item.size == len(expected)
        assert item.content_type == "audio/wav"
        assert item.key.startswith(f"{s3_prefix}recordings/{cdr.tenant}/")
        assert item.key.endswith(f"/{cdr.uuid}.wav")
        stored = s3_client.get_object(Bucket=item.bucket, Key=item.key)
        assert hashlib.sha256(stored["Body"].read()).hexdigest() == item.sha256
        assert stored["Metadata"]["sha256"] == item.sha256
        assert stored["Metadata"]["call-uuid"] == cdr.uuid
        assert stored["Metadata"]["cdr-id"] == cdr.cdr_id


async def test_a_recording_not_ready_yet_is_retried_without_blocking_others(
    services: Services, topic_set: TopicSetFactory, s3_client: S3Client, s3_prefix: str
) -> None:
    _, topics = await topic_set()
    slow = SimSettings(seed=2, faults=Faults(not_ready_seconds=60))
    async with running_simulator(slow) as sim:
        late = answered_cdrs(sim, 2, seed=7)
        sim.settings = dataclasses.replace(sim.settings, faults=Faults())
        ready = answered_cdrs(sim, 3, seed=8)
        await publish_cdrs(services, topics, late + ready)
        settings = RecordingsSettings(s3_prefix=s3_prefix, first_backoff=5.0, max_backoff=10.0)
        started = time.monotonic()
        async with running_recorder(services, topics, sim, settings, s3_client) as service:
            first = await wait_announced(services, topics, len(ready), 30)
            early = time.monotonic() - started
            everything = await wait_announced(services, topics, len(late) + len(ready), 120)
    assert {a.uuid for a in first} == {c.uuid for c in ready}, "the ready ones came first"
    assert early < 30, "nothing waited for the late recordings"
    assert {a.uuid for a in everything} == {c.uuid for c in late + ready}
    assert service.recorder.outcome.retried >= len(late)
    assert all(a.attempts > 1 for a in everything if a.uuid in {c.uuid for c in late})


async def test_s3_down_for_20s_loses_no_recording(
    services: Services, topic_set: TopicSetFactory, private_s3: PrivateS3
) -> None:
    _, topics = await topic_set()
    client = make_client(private_s3.s3, attempts=1, timeout=5)
    async with running_simulator() as sim:
        cdrs = answered_cdrs(sim, 5, seed=21)
        await asyncio.to_thread(private_s3.kill)
        await publish_cdrs(services, topics, cdrs)
        settings = RecordingsSettings(first_backoff=2.0, max_backoff=5.0)
        async with running_recorder(
            services, topics, sim, settings, client, bucket=private_s3.s3.bucket
        ) as service:
            await asyncio.sleep(20)
            assert service.recorder.outcome.archived == 0
            assert service.recorder.outcome.retried >= len(cdrs), "retried while S3 was down"
            await asyncio.to_thread(private_s3.start)
            announced = await wait_announced(services, topics, len(cdrs), 60)
        assert service.recorder.outcome.dead == 0
    assert {a.uuid for a in announced} == {c.uuid for c in cdrs}
    for item in announced:
        assert item.bucket == private_s3.s3.bucket
        body = client.get_object(Bucket=item.bucket, Key=item.key)["Body"].read()
        assert hashlib.sha256(body).hexdigest() == item.sha256


async def test_archived_once_then_found_and_hopeless_ones_dead_lettered(
    services: Services, topic_set: TopicSetFactory, s3_client: S3Client, s3_prefix: str
) -> None:
    _, topics = await topic_set()
    async with running_simulator() as sim:
        [cdr] = answered_cdrs(sim, 1, seed=41)
        missing = msgspec.structs.replace(
            answered_cdrs(sim, 1, seed=42)[0], recording_file="20260101/9024/never-made.wav"
        )
        settings = RecordingsSettings(s3_prefix=s3_prefix, first_backoff=1.0)
        await publish_cdrs(services, topics, [cdr, missing])
        async with running_recorder(services, topics, sim, settings, s3_client) as service:
            first = await wait_announced(services, topics, 1, 30)
            downloads = sim.state.requests["App.Sip_Cdr.GetRecodeFile"]
            await publish_cdrs(services, topics, [cdr])  # the same CDR again
            both = await wait_announced(services, topics, 2, 30)
            async with asyncio.timeout(30):
                while service.recorder.outcome.dead < 1:
                    await asyncio.sleep(0.2)
        assert sim.state.requests["App.Sip_Cdr.GetRecodeFile"] == downloads, "not fetched again"
    assert [a.sha256 for a in both] == [first[0].sha256] * 2
    letters = await read_topic(services.kafka, topics.deadletter)
    assert len(letters) == 1
    headers = dict(letters[0].headers)
    assert headers["dlq-service"] == b"recordings"
    assert headers["dlq-reason"] == b"ApiError"
    assert b"ret 400" in headers["dlq-detail"]
    assert headers["dlq-attempts"] == b"1"


async def test_downloads_longer_than_the_poll_interval_do_not_stall_the_group(
    services: Services, topic_set: TopicSetFactory, s3_client: S3Client, s3_prefix: str
) -> None:
    _, topics = await topic_set()
    slow = SimSettings(seed=5, faults=Faults(slow=1.0, slow_seconds=4.0))
    async with running_simulator(slow) as sim:
        cdrs = answered_cdrs(sim, 3, seed=51)
        await publish_cdrs(services, topics, cdrs)
        # Every API answer takes 4 s: each recording needs > 8 s, the poll interval is 3 s.
        settings = RecordingsSettings(
            s3_prefix=s3_prefix, max_poll_interval_ms=3000, api_timeout=30.0
        )
        async with running_recorder(services, topics, sim, settings, s3_client) as service:
            announced = await wait_announced(services, topics, len(cdrs), 90)
            await asyncio.sleep(5)
            announced = await wait_announced(services, topics, len(cdrs), 5)
    assert sorted(a.uuid for a in announced) == sorted(c.uuid for c in cdrs), "each once"
    assert service.recorder.outcome.retried == 0
    assert service.recorder.outcome.dead == 0
    assert service.workers.rebalances == 1, "the group never dropped this consumer"


def _elsewhere(sim: Simulator) -> str:
    """The simulator itself under another loopback address, which no tenant lists."""
    return f"http://127.0.0.2:{sim.settings.port}"


@pytest.mark.parametrize("trick", ["forbidden-host", "redirect", "endless"])
async def test_links_the_tenant_does_not_allow_are_never_archived(
    services: Services,
    topic_set: TopicSetFactory,
    s3_client: S3Client,
    s3_prefix: str,
    trick: str,
) -> None:
    _, topics = await topic_set()
    async with running_simulator() as sim:
        faults = {
            "forbidden-host": Faults(link_base=_elsewhere(sim)),
            "redirect": Faults(redirect_to=_elsewhere(sim)),
            "endless": Faults(endless=True),
        }[trick]
        sim.settings = dataclasses.replace(sim.settings, faults=faults)
        [cdr] = answered_cdrs(sim, 1, seed=61)
        await publish_cdrs(services, topics, [cdr])
        settings = RecordingsSettings(s3_prefix=s3_prefix, max_recording_bytes=1 << 20)
        async with running_recorder(services, topics, sim, settings, s3_client) as service:
            async with asyncio.timeout(60):
                while service.recorder.outcome.dead < 1:
                    await asyncio.sleep(0.2)
            downloads = sim.state.downloads
    expected = {
        "forbidden-host": (b"LinkRefusedError", b"'127.0.0.2' is not one the tenant allows"),
        "redirect": (b"LinkRefusedError", b"'127.0.0.2' is not one the tenant allows"),
        "endless": (b"RecordingTooLargeError", b"over 1048576 bytes"),
    }[trick]
    [letter] = await read_topic(services.kafka, topics.deadletter)
    headers = dict(letter.headers)
    assert headers["dlq-reason"] == expected[0]
    assert expected[1] in headers["dlq-detail"]
    assert await read_topic(services.kafka, topics.recordings) == []
    listed = s3_client.list_objects_v2(Bucket=services.s3.bucket, Prefix=s3_prefix)
    assert listed.get("KeyCount", 0) == 0, "nothing archived"
    uploads = s3_client.list_multipart_uploads(Bucket=services.s3.bucket, Prefix=s3_prefix)
    assert uploads.get("Uploads", []) == [], "the endless upload was aborted"
    # The forbidden link was never requested; the redirect's first hop and the endless
    # download were (from the allowed address).
    assert downloads == (0 if trick == "forbidden-host" else 1)
