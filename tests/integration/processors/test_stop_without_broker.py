"""The consumers told to stop while their broker is down for good, with traffic in flight
when it went, or while no broker has ever answered them: each ends on its own, exit code
0, in bounded time, rather than trying again until a broker comes back (the runner's stop
deadline is off here)."""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
import time
from pathlib import Path

from devkit.ports import free_port
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


def _started(
    env: dict[str, str], tmp_path: Path
) -> tuple[dict[str, subprocess.Popen[bytes]], dict[str, Path]]:
    """The four consumers, with the stop deadline off; each logs to a file of its own."""
    env = {
        **env,
        "CALLSTREAM_BOARD_HTTP_PORT": "0",
        "CALLSTREAM_TENANTS": str(TENANTS),
        "CALLSTREAM_STOP_DEADLINE": "0",
    }
    logs = {name: tmp_path / f"{name}.log" for name in SERVICES}
    return {name: start_service(name, env, log) for name, log in logs.items()}, logs


async def _stopped(
    procs: dict[str, subprocess.Popen[bytes]], within: float
) -> tuple[list[int], float]:
    """Each one's exit code after SIGTERM (SIGKILL after `within`), and how long it took."""
    signalled = time.monotonic()
    codes = await asyncio.gather(
        *(asyncio.to_thread(stop_service, proc, within) for proc in procs.values())
    )
    return codes, time.monotonic() - signalled


async def test_the_consumers_stop_on_sigterm_while_the_broker_is_down(
    services: Services, s3_prefix: str, tmp_path: Path, broker: PrivateKafka
) -> None:
    suffix, topics = await new_topics(broker.kafka)
    env = {
        **dataclasses.replace(services, kafka=broker.kafka).env(s3_prefix),
        "CALLSTREAM_TOPIC_SUFFIX": suffix,
        "CALLSTREAM_INSTANCE": "stop",
        "CALLSTREAM_LAKE_FLUSH_SECONDS": "1",
    }
    procs, logs = _started(env, tmp_path)
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
        codes, took = await _stopped(procs, STOPS_WITHIN)
    finally:
        traffic_stop.set()
        await traffic
        for proc in procs.values():
            stop_service(proc, 1)
    print(f"{', '.join(SERVICES)} stopped {took:.1f}s after SIGTERM")
    assert codes == [0] * len(SERVICES), {name: logs[name].read_text()[-3000:] for name in logs}


# A start-up call under way when the signal comes ends on its own: librdkafka's
# init_transactions within its 10 s and 5 s of grace, aiokafka's bootstrap at once.
STARTING_STOPS_WITHIN = 30.0


async def test_the_consumers_stop_on_sigterm_before_any_broker_answered(
    services: Services, s3_prefix: str, tmp_path: Path
) -> None:
    nobody = f"127.0.0.1:{free_port()}"  # nothing listens: every connection is refused
    env = {
        **services.env(s3_prefix),
        "CALLSTREAM_KAFKA_BOOTSTRAP": nobody,
        "CALLSTREAM_INSTANCE": "unstarted",
    }
    procs, logs = _started(env, tmp_path)
    try:
        async with asyncio.timeout(60):  # each has failed to reach Kafka, and will try again
            while not all('"logger":"common.retry"' in log.read_text() for log in logs.values()):
                await asyncio.sleep(0.5)
        codes, took = await _stopped(procs, STARTING_STOPS_WITHIN)
    finally:
        for proc in procs.values():
            stop_service(proc, 1)
    print(f"{', '.join(SERVICES)} stopped {took:.1f}s after SIGTERM, never having started")
    said = {name: log.read_text() for name, log in logs.items()}
    assert codes == [0] * len(SERVICES), {name: text[-3000:] for name, text in said.items()}
    assert not [name for name, text in said.items() if "Unclosed" in text], "clients closed"
