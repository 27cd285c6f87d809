"""The lake under steady traffic through an S3 stall (the server frozen for 15 s) and a
group rebalance (a second lake joins, then leaves): every raw record reaches the lake,
and both lakes stop cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from pathlib import Path

from common.s3 import ensure_bucket, make_client
from devkit.raw import publish_until
from tests.integration.conftest import TopicSetFactory
from tests.support.lake import lake_positions, raw_positions
from tests.support.private_s3 import PrivateS3
from tests.support.processes import start_service, stop_service
from tests.support.services import Services


async def test_the_lake_rides_out_an_s3_stall_and_a_rebalance(
    services: Services, topic_set: TopicSetFactory, tmp_path: Path
) -> None:
    suffix, topics = await topic_set()
    private = PrivateS3.create(tmp_path / "s3")
    await asyncio.to_thread(private.start)
    client = make_client(private.s3)
    ensure_bucket(client, private.s3.bucket)
    env = {
        "CALLSTREAM_KAFKA_BOOTSTRAP": services.kafka.bootstrap,
        "CALLSTREAM_TOPIC_SUFFIX": suffix,
        "CALLSTREAM_S3_ENDPOINT": private.s3.endpoint or "",
        "CALLSTREAM_S3_BUCKET": private.s3.bucket,
        "CALLSTREAM_S3_ACCESS_KEY_ID": private.s3.access_key_id or "",
        "CALLSTREAM_S3_SECRET_ACCESS_KEY": private.s3.secret_access_key or "",
        "CALLSTREAM_LAKE_FLUSH_SECONDS": "1",
        "CALLSTREAM_LAKE_GROUP": f"lake-{suffix}",
    }
    logs = [tmp_path / "lake-1.log", tmp_path / "lake-2.log"]
    first = start_service("lake", env, logs[0])
    second: subprocess.Popen[bytes] | None = None
    stop = asyncio.Event()
    traffic = asyncio.create_task(publish_until(stop, services.kafka, topics, calls=10, seed=2000))
    codes = []
    try:
        await asyncio.sleep(3)
        await asyncio.to_thread(private.freeze)
        await asyncio.sleep(15)
        await asyncio.to_thread(private.thaw)
        await asyncio.sleep(3)
        second = start_service("lake", env, logs[1])  # partitions move to it
        await asyncio.sleep(8)
        codes.append(stop_service(second))  # and back
        await asyncio.sleep(3)
        stop.set()
        await traffic
        async with asyncio.timeout(120):
            while True:
                raw = await raw_positions(services.kafka, topics)
                lake = await asyncio.to_thread(lake_positions, client, private.s3.bucket, "")
                if raw <= lake:
                    break
                assert first.poll() is None, logs[0].read_text()[-4000:]
                await asyncio.sleep(1)
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            traffic.cancel()
            await traffic
        codes.insert(0, stop_service(first))
        if second is not None and second.poll() is None:
            codes.append(stop_service(second))
        with contextlib.suppress(Exception):
            private.thaw()
        private.stop()
    assert len(raw) > 500
    assert codes == [0, 0], [log.read_text()[-3000:] for log in logs if log.exists()]
