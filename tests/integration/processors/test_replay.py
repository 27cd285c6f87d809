"""`callstream replay` against the real broker (and the real S3 server for the lake)."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import msgspec

from common.kafka import durable_producer, kafka_admin
from common.records import CdrRecord
from common.topics import Header
from devkit.raw import publish_raw, raw_headers, simulated_callbacks
from processors.replay.publish import REPLAY, REPLAY_SOURCE
from tests.integration.conftest import TopicFactory, TopicSetFactory
from tests.support.enrich import running_enrich
from tests.support.kafka import read_topic
from tests.support.processes import run_callstream
from tests.support.services import Services

HOUR_MS = 3_600_000


def _iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).isoformat()


async def test_a_window_replay_republishes_exactly_the_window(
    services: Services, new_topic: TopicFactory
) -> None:
    source, target = await new_topic("replay-from"), await new_topic("replay-to")
    base = (int(dt.datetime.now(dt.UTC).timestamp() * 1000) // HOUR_MS - 3) * HOUR_MS
    producer = durable_producer(services.kafka)
    await producer.start()
    try:
        for minute in range(90):  # one record a minute, keys spread over the partitions
            await producer.send_and_wait(
                source,
                f"v{minute}".encode(),
                key=f"call-{minute % 7}".encode(),
                headers=[("tenant", b"9024"), ("n", str(minute).encode())],
                timestamp_ms=base + minute * 60_000,
            )
    finally:
        await producer.stop()
    start, end = base + 30 * 60_000, base + 60 * 60_000  # minutes 30..59
    env = {"CALLSTREAM_KAFKA_BOOTSTRAP": services.kafka.bootstrap}
    args = [
        "--from-topic",
        source,
        "--to-topic",
        target,
        "--start",
        _iso(start),
        "--end",
        _iso(end),
    ]

    dry = run_callstream("replay", "window", *args, "--dry-run", env=env)
    assert dry.returncode == 0, dry.stderr
    assert "30 records" in dry.stdout
    assert await read_topic(services.kafka, target) == []

    done = run_callstream("replay", "window", *args, env=env)
    assert done.returncode == 0, done.stderr
    assert "republished 30" in done.stdout
    copied = await read_topic(services.kafka, target)
    assert sorted(int(r.value[1:]) for r in copied) == list(range(30, 60))
    for record in copied:
        headers = dict(record.headers)
        minute = int(headers["n"])
        assert record.key == f"call-{minute % 7}".encode()
        assert headers["tenant"] == b"9024"
        assert headers[REPLAY] == b"window"
        assert headers[REPLAY_SOURCE].startswith(f"{source}/".encode())


async def test_a_group_reset_makes_enrich_reprocess_without_duplicates(
    services: Services, topic_set: TopicSetFactory
) -> None:
    _, topics = await topic_set()
    group = f"enrich-{uuid.uuid4().hex}"
    items = simulated_callbacks(12, seed=12)
    await publish_raw(services.kafka, topics, items)
    cdrs = [c for c in items if c.kind == "cdr"]
    async with running_enrich(services.kafka, topics, group):
        async with asyncio.timeout(60):
            while len(await read_topic(services.kafka, topics.cdr)) < len(cdrs):
                await asyncio.sleep(0.5)
    env = {"CALLSTREAM_KAFKA_BOOTSTRAP": services.kafka.bootstrap}

    reset = run_callstream("replay", "reset", "--group", group, "--to=-1d", env=env)
    assert reset.returncode == 0, reset.stderr
    assert f"{len(items)} records to read again" in reset.stdout
    assert await _committed(services, group) == 0, "every partition back at its start"

    async with running_enrich(services.kafka, topics, group):
        async with asyncio.timeout(60):
            while await _committed(services, group) < len(items):  # all read again
                await asyncio.sleep(0.5)
        busy = run_callstream("replay", "reset", "--group", group, "--to=-1d", env=env)
        assert busy.returncode == 1, "refused while enrich is a live member"
        assert "live member" in busy.stderr
    out = [
        msgspec.json.decode(r.value, type=CdrRecord)
        for r in await read_topic(services.kafka, topics.cdr)
    ]
    assert sorted(r.uuid for r in out) == sorted(c.uuid for c in cdrs), "each CDR once"
    states = await read_topic(services.kafka, topics.callstate)
    assert len(states) == len(items) - len(cdrs)


async def _committed(services: Services, group: str) -> int:
    async with kafka_admin(services.kafka) as admin:
        return sum(o.offset for o in (await admin.list_consumer_group_offsets(group)).values())


async def test_a_fixed_dead_letter_is_re_injected_and_a_bad_one_stays(
    services: Services, topic_set: TopicSetFactory
) -> None:
    suffix, topics = await topic_set()
    [fixed] = [c for c in simulated_callbacks(1, seed=3) if c.kind == "cdr"]
    dlq = [(Header.DLQ_SOURCE_TOPIC, topics.cdr_raw.encode()), (Header.DLQ_SERVICE, b"ingest")]
    producer = durable_producer(services.kafka)
    await producer.start()
    try:
        # As an older receiver would have dead-lettered them: no key, the reason in headers.
        for body, reason in ((fixed.body, b"invalid-type"), (b'{"uuid": 7, broken', b"bad-json")):
            await producer.send_and_wait(
                topics.deadletter,
                body,
                headers=[*raw_headers(fixed, "ev-1"), *dlq, (Header.DLQ_REASON, reason)],
            )
    finally:
        await producer.stop()
    env = {
        "CALLSTREAM_KAFKA_BOOTSTRAP": services.kafka.bootstrap,
        "CALLSTREAM_TOPIC_SUFFIX": suffix,
    }

    done = run_callstream("replay", "deadletter", env=env)
    assert done.returncode == 0, done.stderr
    assert "republished 1" in done.stdout
    assert "still_rejected 1" in done.stdout
    [back] = await read_topic(services.kafka, topics.cdr_raw)
    assert back.value == fixed.body
    assert back.key == fixed.uuid.encode()
    headers = dict(back.headers)
    assert headers[REPLAY] == b"deadletter"
    assert not any(name.startswith("dlq-") for name in headers)
    assert len(await read_topic(services.kafka, topics.deadletter)) == 2, "nothing removed"
