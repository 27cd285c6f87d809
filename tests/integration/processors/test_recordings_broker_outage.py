"""Recordings through a broker outage longer than the producer's request timeout, with
recordings being archived when the broker dies: the service keeps running, every
recording is announced, and its consumer group goes on."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import TYPE_CHECKING

from devkit.sim import running_simulator
from devkit.topics import new_topics
from processors.recordings.service import RecordingsSettings
from tests.integration.processors.test_recordings import (
    answered_cdrs,
    publish_cdrs,
    running_recorder,
    wait_announced,
)
from tests.support.private_kafka import PrivateKafka
from tests.support.services import Services
from yunhu.sim.settings import Faults, SimSettings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

DOWN_SECONDS = 40.0  # longer than the producer's request timeout (30 s)


async def test_a_broker_outage_mid_archive_loses_no_announcement(
    services: Services, s3_client: S3Client, s3_prefix: str, broker: PrivateKafka
) -> None:
    private = dataclasses.replace(services, kafka=broker.kafka)
    _, topics = await new_topics(broker.kafka)
    slow = SimSettings(seed=9, faults=Faults(slow=1.0, slow_seconds=1.0))
    async with running_simulator(slow) as sim:
        cdrs = answered_cdrs(sim, 40, seed=61)
        await publish_cdrs(private, topics, cdrs)
        settings = RecordingsSettings(s3_prefix=s3_prefix, concurrency=4, per_tenant=2)
        async with running_recorder(private, topics, sim, settings, s3_client) as service:
            await wait_announced(private, topics, 1, 60)
            await asyncio.to_thread(broker.kill)  # downloads and uploads are in flight
            await asyncio.sleep(DOWN_SECONDS)
            await asyncio.to_thread(broker.start)
            announced = await wait_announced(private, topics, len(cdrs), 180)
            assert service.recorder.outcome.dead == 0
    assert {a.uuid for a in announced} == {c.uuid for c in cdrs}
