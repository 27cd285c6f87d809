"""enrich, the board and the lake through a broker SIGKILL and restart while all are idle,
with calls before and after: they are back within seconds of the broker, not after
their transaction calls time out (librdkafka's re-bootstrap left an idle transactional
producer waiting for a group coordinator it had dropped: librdkafka #5511)."""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from aiokafka.errors import GroupCoordinatorNotAvailableError

from common.config import KafkaSettings
from common.kafka import kafka_admin
from common.topics import Topics
from devkit.raw import publish_until
from devkit.topics import new_topics
from tests.support.lake import Position, lake_positions, positions, raw_positions
from tests.support.private_kafka import PrivateKafka
from tests.support.processes import start_service, stop_service
from tests.support.services import Services

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

DOWN_SECONDS = 15.0
TRAFFIC_SECONDS = 5.0
BACK_WITHIN = 25.0  # seconds from the broker's restart to every service holding every record
ENRICH_GROUP = "enrich-restart"
BOARD_GROUP = "board-restart"


async def unread(kafka: KafkaSettings, group: str, records: set[Position]) -> int:
    """Partitions whose last record of `records` `group` has not committed past (all of
    them while the group's coordinator cannot be found: a young broker, a restart)."""
    ends: dict[tuple[str, int], int] = {}
    for topic, partition, offset in records:
        ends[topic, partition] = max(ends.get((topic, partition), 0), offset + 1)
    async with kafka_admin(kafka) as admin:
        try:
            committed = await admin.list_consumer_group_offsets(group)
        except GroupCoordinatorNotAvailableError:
            return len(ends)
    done = {(tp.topic, tp.partition): meta.offset for tp, meta in committed.items()}
    return sum(1 for tp, end in ends.items() if done.get(tp, -1) < end)


@dataclass
class Pipes:
    kafka: KafkaSettings
    topics: Topics
    s3: S3Client
    bucket: str
    prefix: str
    procs: dict[str, subprocess.Popen[bytes]]
    logs: dict[str, Path]

    async def behind(self) -> int:
        """What enrich has not enriched, the board not taken in, or the lake not stored."""
        raw = await raw_positions(self.kafka, self.topics)
        enriched = await positions(self.kafka, [self.topics.callstate, self.topics.cdr])
        stored = await asyncio.to_thread(lake_positions, self.s3, self.bucket, self.prefix)
        return (
            await unread(self.kafka, ENRICH_GROUP, raw)
            + await unread(self.kafka, BOARD_GROUP, enriched)
            + len(raw - stored)
        )

    async def traffic_then_caught_up(self, *, seed: int) -> None:
        """Calls for a few seconds, then waits until every service is past all of them."""
        stop = asyncio.Event()
        traffic = asyncio.create_task(
            publish_until(stop, self.kafka, self.topics, calls=5, seed=seed)
        )
        await asyncio.sleep(TRAFFIC_SECONDS)
        stop.set()
        await traffic
        async with asyncio.timeout(120):
            while await self.behind():
                for name, proc in self.procs.items():
                    log = self.logs[name].read_text()[-4000:]
                    assert proc.poll() is None, f"{name} exited:\n{log}"
                await asyncio.sleep(0.5)


async def test_idle_pipes_are_back_soon_after_a_broker_restart(
    services: Services, s3_client: S3Client, s3_prefix: str, tmp_path: Path, broker: PrivateKafka
) -> None:
    suffix, topics = await new_topics(broker.kafka)
    env = {
        **dataclasses.replace(services, kafka=broker.kafka).env(s3_prefix),
        "CALLSTREAM_TOPIC_SUFFIX": suffix,
        "CALLSTREAM_INSTANCE": "restart",
        "CALLSTREAM_ENRICH_GROUP": ENRICH_GROUP,
        "CALLSTREAM_BOARD_GROUP_ID": BOARD_GROUP,
        "CALLSTREAM_BOARD_HTTP_PORT": "0",
        "CALLSTREAM_LAKE_FLUSH_SECONDS": "1",
    }
    logs = {name: tmp_path / f"{name}.log" for name in ("enrich", "board", "lake")}
    procs = {name: start_service(name, env, log) for name, log in logs.items()}
    pipes = Pipes(broker.kafka, topics, s3_client, services.s3.bucket, s3_prefix, procs, logs)
    try:
        await pipes.traffic_then_caught_up(seed=300)
        await asyncio.to_thread(broker.kill)  # every service idle: nothing in flight
        await asyncio.sleep(DOWN_SECONDS)
        await asyncio.to_thread(broker.start)
        back = time.monotonic()
        await pipes.traffic_then_caught_up(seed=600)
        caught_up = time.monotonic() - back
    finally:
        codes = {name: stop_service(proc) for name, proc in procs.items()}
    print(f"enrich, the board and the lake caught up {caught_up:.1f}s after the restart")
    assert caught_up < BACK_WITHIN, {n: logs[n].read_text()[-3000:] for n in logs}
    assert codes == dict.fromkeys(logs, 0), {n: logs[n].read_text()[-3000:] for n in logs}
