"""enrich and the board through a broker SIGKILL and restart while both are idle, with
calls before and after: they are back within seconds of the broker, not after their
transaction calls time out (librdkafka's re-bootstrap left an idle transactional
producer waiting for a group coordinator it had dropped: librdkafka #5511)."""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from pathlib import Path

from common.config import KafkaSettings
from common.kafka import kafka_admin
from common.topics import Topics
from devkit.raw import publish_until
from devkit.topics import create_topics
from tests.support.kafka import read_topic
from tests.support.private_kafka import PrivateKafka
from tests.support.processes import start_service, stop_service

DOWN_SECONDS = 15.0
TRAFFIC_SECONDS = 5.0
BACK_WITHIN = 25.0  # seconds from the broker's restart to both holding every new record
ENRICH_GROUP = "enrich-restart"
BOARD_GROUP = "board-restart"


async def unread(kafka: KafkaSettings, group: str, topics: list[str]) -> int:
    """Partitions of `topics` whose last record `group` has not committed past."""
    ends: dict[tuple[str, int], int] = {}
    for topic in topics:
        for record in await read_topic(kafka, topic):
            tp = (topic, record.partition)
            ends[tp] = max(ends.get(tp, 0), record.offset + 1)
    async with kafka_admin(kafka) as admin:
        committed = await admin.list_consumer_group_offsets(group)
    done = {(tp.topic, tp.partition): meta.offset for tp, meta in committed.items()}
    return sum(1 for tp, end in ends.items() if done.get(tp, -1) < end)


async def behind(kafka: KafkaSettings, topics: Topics) -> int:
    """What enrich has not enriched, or the board not taken in."""
    raw = await unread(kafka, ENRICH_GROUP, [topics.callstate_raw, topics.cdr_raw])
    return raw + await unread(kafka, BOARD_GROUP, [topics.callstate, topics.cdr])


async def traffic_then_caught_up(
    kafka: KafkaSettings,
    topics: Topics,
    procs: dict[str, subprocess.Popen[bytes]],
    logs: dict[str, Path],
    *,
    seed: int,
) -> None:
    """Calls for a few seconds, then waits until enrich and the board are past all of them."""
    stop = asyncio.Event()
    traffic = asyncio.create_task(publish_until(stop, kafka, topics, calls=5, seed=seed))
    await asyncio.sleep(TRAFFIC_SECONDS)
    stop.set()
    await traffic
    async with asyncio.timeout(120):
        while await behind(kafka, topics):
            for name, proc in procs.items():
                assert proc.poll() is None, f"{name} exited:\n{logs[name].read_text()[-4000:]}"
            await asyncio.sleep(0.5)


async def test_idle_pipes_are_back_soon_after_a_broker_restart(tmp_path: Path) -> None:
    broker = PrivateKafka.create(tmp_path / "kafka")
    await asyncio.to_thread(broker.start)
    suffix = uuid.uuid4().hex[:10]
    topics = Topics.with_suffix(suffix)
    await create_topics(broker.kafka, topics)
    env = {
        "CALLSTREAM_KAFKA_BOOTSTRAP": broker.kafka.bootstrap,
        "CALLSTREAM_TOPIC_SUFFIX": suffix,
        "CALLSTREAM_INSTANCE": "restart",
        "CALLSTREAM_ENRICH_GROUP": ENRICH_GROUP,
        "CALLSTREAM_BOARD_GROUP_ID": BOARD_GROUP,
        "CALLSTREAM_BOARD_HTTP_PORT": "0",
    }
    logs = {name: tmp_path / f"{name}.log" for name in ("enrich", "board")}
    procs = {name: start_service(name, env, log) for name, log in logs.items()}
    try:
        await traffic_then_caught_up(broker.kafka, topics, procs, logs, seed=300)
        await asyncio.to_thread(broker.kill)  # both idle: no transaction in flight
        await asyncio.sleep(DOWN_SECONDS)
        await asyncio.to_thread(broker.start)
        back = time.monotonic()
        await traffic_then_caught_up(broker.kafka, topics, procs, logs, seed=600)
        caught_up = time.monotonic() - back
    finally:
        codes = {name: stop_service(proc) for name, proc in procs.items()}
        await asyncio.to_thread(broker.stop)
    print(f"enrich and the board caught up {caught_up:.1f}s after the broker restarted")
    assert caught_up < BACK_WITHIN, {n: logs[n].read_text()[-3000:] for n in logs}
    assert codes == {"enrich": 0, "board": 0}, {n: logs[n].read_text()[-3000:] for n in logs}
