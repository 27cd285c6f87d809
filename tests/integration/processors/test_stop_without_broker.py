"""The consumers told to stop while their broker is down for good, with traffic in flight
when it went: each ends on its own, exit code 0, in bounded time, rather than trying
again until a broker comes back (the runner's stop deadline is off here)."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path

from devkit.raw import publish_until
from devkit.topics import new_topics
from tests.support.kafka import read_topic
from tests.support.private_kafka import PrivateKafka
from tests.support.processes import start_service, stop_service
from tests.support.services import Services

# enrich and the board: the transaction in flight waits out its calls' timeouts (2 x 10 s,
# and 5 s of grace); then the producer's flush (10 s, and 5 s) and the consumer's close.
# The lake and recordings: a commit is given up on after 10 s (common.kafka).
STOPS_WITHIN = 60.0
TENANTS = Path(__file__).parents[3] / "deploy" / "tenants.example.toml"
SERVICES = ("enrich", "board", "lake", "recordings")


async def test_the_consumers_stop_on_sigterm_while_the_broker_is_down(
    services: Services, s3_prefix: str, tmp_path: Path, broker: PrivateKafka
) -> None:
    suffix, topics = await new_topics(broker.kafka)
    env = {
        **dataclasses.replace(services, kafka=broker.kafka).env(s3_prefix),
        "CALLSTREAM_TOPIC_SUFFIX": suffix,
        "CALLSTREAM_INSTANCE": "stop",
        "CALLSTREAM_BOARD_HTTP_PORT": "0",
        "CALLSTREAM_LAKE_FLUSH_SECONDS": "1",
        "CALLSTREAM_TENANTS": str(TENANTS),
        "CALLSTREAM_STOP_DEADLINE": "0",
    }
    logs = {name: tmp_path / f"{name}.log" for name in SERVICES}
    procs = {name: start_service(name, env, log) for name, log in logs.items()}
    traffic_stop = asyncio.Event()
    traffic = asyncio.create_task(
        publish_until(traffic_stop, broker.kafka, topics, calls=10, seed=7000)
    )
    try:
        async with asyncio.timeout(60):
            while not await read_topic(broker.kafka, topics.callstate):
                await asyncio.sleep(0.5)
        await asyncio.sleep(2)  # records flowing: transactions in flight
        await asyncio.to_thread(broker.kill)
        await asyncio.sleep(2)  # the failed calls, and the retries, are under way
        stopped = time.monotonic()
        codes = await asyncio.gather(
            *(asyncio.to_thread(stop_service, proc, STOPS_WITHIN) for proc in procs.values())
        )
        took = time.monotonic() - stopped
    finally:
        traffic_stop.set()
        await traffic
        for proc in procs.values():
            stop_service(proc, 1)
    print(f"{', '.join(SERVICES)} stopped {took:.1f}s after SIGTERM")
    assert codes == [0] * len(SERVICES), {name: logs[name].read_text()[-3000:] for name in logs}
