"""enrich SIGKILLed mid-stream and restarted: the committed output holds every input once."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from pathlib import Path

from common.config import KafkaSettings
from common.kafka import topic_reader
from devkit.raw import publish_raw, simulated_callbacks
from tests.integration.conftest import TopicSetFactory
from tests.support.kafka import read_topic
from tests.support.processes import start_service
from tests.support.services import Services


def _start(services: Services, suffix: str, group: str, log: Path) -> subprocess.Popen[bytes]:
    env = {
        "CALLSTREAM_KAFKA_BOOTSTRAP": services.kafka.bootstrap,
        "CALLSTREAM_TOPIC_SUFFIX": suffix,
        "CALLSTREAM_ENRICH_GROUP": group,
        "CALLSTREAM_INSTANCE": "crash-test",
    }
    return start_service("enrich", env, log)


async def _until_written(kafka: KafkaSettings, names: list[str]) -> None:
    """Returns as soon as a committed record is in one of the topics: a cheap look at
    their end offsets, so enrich is not left running while whole topics are read."""
    async with topic_reader(kafka, names) as (consumer, parts), asyncio.timeout(60):
        while not any((await consumer.end_offsets(parts)).values()):
            await asyncio.sleep(0.05)


async def test_a_killed_enricher_leaves_no_duplicate_in_the_committed_output(
    services: Services, topic_set: TopicSetFactory, tmp_path: Path
) -> None:
    suffix, topics = await topic_set()
    # Enough input that the kill lands mid-stream: enrich's transactions take up to 5 000
    # records, and it is killed as soon as the first of them reaches the output topics.
    items = simulated_callbacks(6000, seed=12)
    await publish_raw(services.kafka, topics, items)
    group = f"enrich-{suffix}"
    log = tmp_path / "enrich.log"

    first = _start(services, suffix, group, log)
    try:
        await _until_written(services.kafka, [topics.callstate, topics.cdr])
        first.send_signal(signal.SIGKILL)
        first.wait()
    finally:
        if first.poll() is None:
            first.kill()
    partial = len(await read_topic(services.kafka, topics.callstate)) + len(
        await read_topic(services.kafka, topics.cdr)
    )
    assert partial < len(items), "the kill came mid-stream"

    second = _start(services, suffix, group, log)
    try:
        async with asyncio.timeout(120):
            while True:
                out = await read_topic(services.kafka, topics.callstate)
                out += await read_topic(services.kafka, topics.cdr)
                if len(out) >= len(items):
                    break
                await asyncio.sleep(0.5)
        await asyncio.sleep(2)
        out = await read_topic(services.kafka, topics.callstate)
        out += await read_topic(services.kafka, topics.cdr)
    finally:
        second.send_signal(signal.SIGTERM)
        code = second.wait(30)
    assert code == 0, log.read_text()
    record_ids = [dict(r.headers)["record-id"] for r in out]
    assert len(record_ids) == len(set(record_ids)) == len(items), "each input exactly once"
