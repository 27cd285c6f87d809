"""The enrich pipe against the real broker: exactly once, decoded, dead letters flowing."""

from __future__ import annotations

import asyncio
import uuid

import msgspec

from common.config import KafkaSettings
from common.records import CdrRecord
from devkit.raw import publish_raw, simulated_callbacks
from tests.integration.conftest import TopicSetFactory
from tests.support.enrich import running_enrich
from tests.support.kafka import read_topic
from tests.support.services import Services
from yunhu.sim.traffic import Callback


async def _wait_for(kafka: KafkaSettings, topic: str, count: int, within: float = 60) -> list:  # type: ignore[type-arg]
    async with asyncio.timeout(within):
        while True:
            records = await read_topic(kafka, topic)
            if len(records) >= count:
                return records
            await asyncio.sleep(0.5)


async def test_every_cdr_once_decoded_and_duplicates_dropped(
    services: Services, topic_set: TopicSetFactory
) -> None:
    _, topics = await topic_set()
    items = simulated_callbacks(30, seed=5)
    cdrs = [c for c in items if c.kind == "cdr"]
    duplicate = [cdrs[0], cdrs[1]]  # the platform sent these twice
    await publish_raw(services.kafka, topics, items + duplicate)
    async with running_enrich(services.kafka, topics, f"g-{uuid.uuid4().hex}"):
        out = await _wait_for(services.kafka, topics.cdr, len(cdrs))
        states = await _wait_for(services.kafka, topics.callstate, len(items) - len(cdrs))
        await asyncio.sleep(2)  # a duplicate, were it published, would have arrived by now
        out = await read_topic(services.kafka, topics.cdr)
    records = [msgspec.json.decode(r.value, type=CdrRecord) for r in out]
    assert sorted(r.uuid for r in records) == sorted(c.uuid for c in cdrs)
    assert len({r.record_id for r in records}) == len(records)
    for record in records:
        assert record.hangup_cause is not None
        assert record.hangup_cause.known
        assert record.hangup_direction is not None
        assert record.hangup_direction.name in {"caller", "callee"}
        assert record.started is not None
        assert record.started.utc.endswith("Z")
        assert record.answered is ((record.talk_seconds or 0) > 0)
        assert record.has_recording == record.answered
    assert len(states) == len(items) - len(cdrs)


async def test_a_poison_record_is_dead_lettered_and_the_rest_flow(
    services: Services, topic_set: TopicSetFactory
) -> None:
    _, topics = await topic_set()
    items = simulated_callbacks(6, seed=9)
    poison = Callback("cdr", "9024", "poison-uuid", b"{not json")
    await publish_raw(services.kafka, topics, [*items[:10], poison, *items[10:]])
    cdrs = [c for c in items if c.kind == "cdr"]
    async with running_enrich(services.kafka, topics, f"g-{uuid.uuid4().hex}"):
        letters = await _wait_for(services.kafka, topics.deadletter, 1)
        out = await _wait_for(services.kafka, topics.cdr, len(cdrs))
    assert len(out) == len(cdrs)
    [letter] = letters
    headers = dict(letter.headers)
    assert letter.value == b"{not json"
    assert headers["dlq-service"] == b"enrich"
    assert headers["dlq-source-topic"] == topics.cdr_raw.encode()
    assert int(headers["dlq-source-offset"]) >= 0
    assert b"invalid_json" in headers["dlq-detail"]


async def test_a_cdr_sent_again_after_a_restart_is_still_published_once(
    services: Services,
    topic_set: TopicSetFactory,
) -> None:
    _, topics = await topic_set()
    cdr = next(c for c in simulated_callbacks(1, seed=3) if c.kind == "cdr")
    group = f"g-{uuid.uuid4().hex}"
    await publish_raw(services.kafka, topics, [cdr])
    async with running_enrich(services.kafka, topics, group):
        await _wait_for(services.kafka, topics.cdr, 1)
    await publish_raw(services.kafka, topics, [cdr])  # the platform posts it again
    marker = simulated_callbacks(2, seed=4)[-1]  # a later CDR: proof the second run caught up
    await publish_raw(services.kafka, topics, [marker])
    async with running_enrich(services.kafka, topics, group):
        out = await _wait_for(services.kafka, topics.cdr, 2)
        await asyncio.sleep(2)
        out = await read_topic(services.kafka, topics.cdr)
    assert sorted(r.key for r in out) == sorted([cdr.uuid.encode(), marker.uuid.encode()])
