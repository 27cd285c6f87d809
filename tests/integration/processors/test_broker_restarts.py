"""enrich and the lake through repeated broker SIGKILLs and restarts, with traffic
between them: both keep running, catch up, enrich's committed output holds every input
once and the lake holds every raw record."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path
from typing import TYPE_CHECKING

from devkit.raw import publish_until
from devkit.topics import new_topics
from tests.support.kafka import read_topic
from tests.support.lake import lake_positions, raw_positions
from tests.support.private_kafka import PrivateKafka
from tests.support.processes import start_service, stop_service
from tests.support.services import Services

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

RESTARTS = 3
DOWN_SECONDS = 8.0
# From the last restart to every record enriched and stored: a transaction call the
# restart left hanging is given up on after 25 s (processors/transactions.py).
BACK_WITHIN = 60.0


async def test_enrich_and_the_lake_ride_out_broker_restarts(
    services: Services, s3_client: S3Client, s3_prefix: str, tmp_path: Path, broker: PrivateKafka
) -> None:
    suffix, topics = await new_topics(broker.kafka)
    env = {
        **dataclasses.replace(services, kafka=broker.kafka).env(s3_prefix),
        "CALLSTREAM_TOPIC_SUFFIX": suffix,
        "CALLSTREAM_INSTANCE": "restarts",
        "CALLSTREAM_LAKE_FLUSH_SECONDS": "1",
    }
    logs = {name: tmp_path / f"{name}.log" for name in ("enrich", "lake")}
    procs = {name: start_service(name, env, log) for name, log in logs.items()}
    stop = asyncio.Event()
    traffic = asyncio.create_task(publish_until(stop, broker.kafka, topics, calls=10, seed=1000))
    try:
        for _ in range(RESTARTS):
            await asyncio.sleep(4)  # traffic flowing: the kill lands mid-transaction
            await asyncio.to_thread(broker.kill)
            await asyncio.sleep(DOWN_SECONDS)
            await asyncio.to_thread(broker.start)
        restarted = time.monotonic()
        await asyncio.sleep(4)
        stop.set()
        await traffic
        async with asyncio.timeout(180):
            while True:
                out = await read_topic(broker.kafka, topics.callstate)
                out += await read_topic(broker.kafka, topics.cdr)
                raw = await raw_positions(broker.kafka, topics)
                lake = await asyncio.to_thread(
                    lake_positions, s3_client, services.s3.bucket, s3_prefix
                )
                if len(out) >= len(raw) and raw <= lake:
                    caught_up = time.monotonic() - restarted
                    break
                for name, proc in procs.items():
                    assert proc.poll() is None, f"{name} exited:\n{logs[name].read_text()[-4000:]}"
                await asyncio.sleep(1)
    finally:
        codes = {name: stop_service(proc) for name, proc in procs.items()}
    print(f"enrich and the lake caught up {caught_up:.1f}s after the last restart")
    assert caught_up < BACK_WITHIN, {n: logs[n].read_text()[-3000:] for n in logs}
    record_ids = [dict(r.headers)["record-id"] for r in out]
    assert len(record_ids) == len(set(record_ids)) == len(raw), "each raw record once"
    assert len(raw) > 1000
    assert codes == {"enrich": 0, "lake": 0}, {n: logs[n].read_text()[-3000:] for n in logs}
