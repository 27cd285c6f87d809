"""The lake under steady traffic through an S3 stall (the server frozen for 15 s) and a
group rebalance (a second lake joins, then leaves): every raw record reaches the lake,
and both lakes stop cleanly. A lake stopped while S3 is frozen exits 0 within its stop
budget, and the records it had not written reach the lake through the next one."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

from common.runner import ABANDONED_GRACE_SECONDS
from common.s3 import make_client
from common.topics import Topics
from devkit.raw import publish_raw, publish_until, simulated_callbacks
from tests.integration.conftest import TopicSetFactory
from tests.support.lake import Position, lake_positions, raw_positions
from tests.support.private_s3 import PrivateS3
from tests.support.processes import start_service, stop_service
from tests.support.services import Services

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

STOP_FLUSH_SECONDS = 3.0  # the lake's bound on its flushes at a stop (10 s by default)


async def test_the_lake_rides_out_an_s3_stall_and_a_rebalance(
    services: Services, topic_set: TopicSetFactory, tmp_path: Path, private_s3: PrivateS3
) -> None:
    suffix, topics = await topic_set()
    client = make_client(private_s3.s3)
    env = _lake_env(services, private_s3, suffix)
    logs = [tmp_path / "lake-1.log", tmp_path / "lake-2.log"]
    first = start_service("lake", env, logs[0])
    second: subprocess.Popen[bytes] | None = None
    stop = asyncio.Event()
    traffic = asyncio.create_task(publish_until(stop, services.kafka, topics, calls=10, seed=2000))
    codes = []
    try:
        await asyncio.sleep(3)
        await asyncio.to_thread(private_s3.freeze)
        await asyncio.sleep(15)
        await asyncio.to_thread(private_s3.thaw)
        await asyncio.sleep(3)
        second = start_service("lake", env, logs[1])  # partitions move to it
        await asyncio.sleep(8)
        codes.append(stop_service(second))  # and back
        await asyncio.sleep(3)
        stop.set()
        await traffic
        raw = await _archived(
            services, topics, client, private_s3.s3.bucket, lake=first, log=logs[0]
        )
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            traffic.cancel()
            await traffic
        codes.insert(0, stop_service(first))
        if second is not None and second.poll() is None:
            codes.append(stop_service(second))
    assert len(raw) > 500
    assert codes == [0, 0], [log.read_text()[-3000:] for log in logs if log.exists()]


async def test_a_lake_stopped_while_s3_is_frozen_exits_0_in_time_and_loses_nothing(
    services: Services, topic_set: TopicSetFactory, tmp_path: Path, private_s3: PrivateS3
) -> None:
    suffix, topics = await topic_set()
    client = make_client(private_s3.s3)
    env = {
        **_lake_env(services, private_s3, suffix),
        "CALLSTREAM_LAKE_STOP_FLUSH_SECONDS": str(STOP_FLUSH_SECONDS),
    }
    logs = [tmp_path / "lake-1.log", tmp_path / "lake-2.log"]
    first = start_service("lake", env, logs[0])
    second: subprocess.Popen[bytes] | None = None
    try:
        await publish_raw(services.kafka, topics, simulated_callbacks(10, seed=3000))
        await _archived(services, topics, client, private_s3.s3.bucket, lake=first, log=logs[0])
        await asyncio.to_thread(private_s3.freeze)
        await publish_raw(services.kafka, topics, simulated_callbacks(10, seed=3001))
        await asyncio.sleep(4)  # a flush every second: one is now held by S3
        signalled = time.monotonic()
        code = await asyncio.to_thread(stop_service, first)
        took = time.monotonic() - signalled
        log = logs[0].read_text()
        await asyncio.to_thread(private_s3.thaw)
        assert code == 0, log[-3000:]
        assert took < STOP_FLUSH_SECONDS + ABANDONED_GRACE_SECONDS + 5, took
        assert "did not finish within" in log
        second = start_service("lake", env, logs[1])
        await _archived(services, topics, client, private_s3.s3.bucket, lake=second, log=logs[1])
        assert stop_service(second) == 0, logs[1].read_text()[-3000:]
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                stop_service(proc)


async def _archived(
    services: Services,
    topics: Topics,
    client: S3Client,
    bucket: str,
    *,
    lake: subprocess.Popen[bytes],
    log: Path,
) -> set[Position]:
    """Every raw record's position, once each one is in the lake; `lake` must keep running."""
    async with asyncio.timeout(120):
        while True:
            raw = await raw_positions(services.kafka, topics)
            archived = await asyncio.to_thread(lake_positions, client, bucket, "")
            if raw and raw <= archived:
                return raw
            assert lake.poll() is None, log.read_text()[-4000:]
            await asyncio.sleep(1)


def _lake_env(services: Services, private: PrivateS3, suffix: str) -> dict[str, str]:
    return {
        **dataclasses.replace(services, s3=private.s3).env(),
        "CALLSTREAM_TOPIC_SUFFIX": suffix,
        "CALLSTREAM_LAKE_FLUSH_SECONDS": "1",
        "CALLSTREAM_LAKE_GROUP": f"lake-{suffix}",
    }
