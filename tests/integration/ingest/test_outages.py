"""Nothing acknowledged is lost when the broker dies, or when the receiver itself does."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

from devkit.sim import running_simulator
from devkit.topics import new_topics
from tests.support.delivery import check_delivery
from tests.support.private_kafka import PrivateKafka
from tests.support.receiver import (
    Receiver,
    killed_on_exit,
    start_receiver,
    stop,
    wait_drained,
    wait_healthy,
)
from yunhu.sim.poster import TrafficSettings
from yunhu.sim.run import post_traffic
from yunhu.sim.sentlog import read_sent_log


async def test_broker_killed_and_restarted_20s_later_loses_nothing(
    tmp_path: Path, broker: PrivateKafka
) -> None:
    suffix, topics = await new_topics(broker.kafka)
    log = tmp_path / "sent.ndjson"
    with killed_on_exit(start_receiver(tmp_path, broker.kafka, suffix)) as receiver:
        await wait_healthy(receiver)
        async with running_simulator() as sim:
            traffic = TrafficSettings(receiver.url, rate=8, duration=36, seed=8, sent_log=log)
            sending = asyncio.create_task(post_traffic(sim, traffic))
            await asyncio.sleep(5)
            await asyncio.to_thread(broker.kill)
            await asyncio.sleep(20)
            await asyncio.to_thread(broker.start)
            report = await sending
        await wait_drained(receiver)
        assert stop(receiver) == 0, receiver.log_text()
    delivery = await check_delivery(broker.kafka, topics, log)
    print(f"\nbroker outage: {report.summary()}\n{delivery.duplicates} duplicates")
    assert report.calls >= 8 * 35
    assert report.accepted == sum(report.statuses.values()), "every callback was acknowledged"
    assert delivery.expected == report.accepted
    assert delivery.missing == [], f"{len(delivery.missing)} acknowledged callbacks lost"
    assert "spool" in receiver.log_text()


async def test_receiver_killed_while_spooling_drains_after_restart(
    tmp_path: Path, broker: PrivateKafka
) -> None:
    suffix, topics = await new_topics(broker.kafka)
    await asyncio.to_thread(broker.kill)  # Kafka is down: everything goes to the spool
    log = tmp_path / "sent.ndjson"
    with killed_on_exit(start_receiver(tmp_path, broker.kafka, suffix)) as first:
        await wait_healthy(first)
        async with running_simulator() as sim:
            traffic = TrafficSettings(first.url, rate=20, duration=6, seed=2, sent_log=log)
            sending = asyncio.create_task(post_traffic(sim, traffic))
            await asyncio.sleep(3)
            first.signal(signal.SIGKILL)
            report = await sending
    spooled = list((tmp_path / "spool" / "worker-0").glob("*.seg"))
    assert spooled, "the killed receiver left its spool behind"
    acknowledged = len(read_sent_log(log))
    assert acknowledged > 100, report.summary()

    second = await _restarted_and_drained(tmp_path, broker, suffix)
    delivery = await check_delivery(broker.kafka, topics, log)
    assert delivery.expected == acknowledged
    assert delivery.missing == [], f"{len(delivery.missing)} acknowledged callbacks lost"
    assert "records left by an earlier run" in second.log_text()


async def test_a_stop_held_up_by_kafka_ends_at_its_deadline_and_loses_nothing(
    tmp_path: Path, broker: PrivateKafka
) -> None:
    """Kafka dies under a connected receiver: its last records wait in librdkafka's queue
    and the spool. SIGTERM then waits on a broker that never answers; the stop deadline
    ends the process (exit 3) and the next start publishes every acknowledged callback."""
    log = tmp_path / "sent.ndjson"
    deadline = 3.0
    suffix, topics = await new_topics(broker.kafka)
    env = {"CALLSTREAM_STOP_DEADLINE": str(deadline)}
    with killed_on_exit(start_receiver(tmp_path, broker.kafka, suffix, extra_env=env)) as first:
        await wait_drained(first)  # connected: events go to Kafka directly
        await asyncio.to_thread(broker.kill)
        async with running_simulator() as sim:
            traffic = TrafficSettings(first.url, rate=20, duration=4, seed=5, sent_log=log)
            report = await post_traffic(sim, traffic)
        signalled = time.monotonic()
        code = stop(first)
        took = time.monotonic() - signalled
    assert code == 3, first.log_text()
    assert took < deadline + 3, took
    assert "CALLSTREAM_STOP_DEADLINE" in first.log_text()
    acknowledged = len(read_sent_log(log))
    assert acknowledged >= 60, report.summary()

    await _restarted_and_drained(tmp_path, broker, suffix)
    delivery = await check_delivery(broker.kafka, topics, log)
    assert delivery.expected == acknowledged
    assert delivery.missing == [], f"{len(delivery.missing)} acknowledged callbacks lost"


async def _restarted_and_drained(tmp_path: Path, broker: PrivateKafka, suffix: str) -> Receiver:
    """The broker back, and a new receiver on the same spool until it has drained it and
    stopped cleanly."""
    await asyncio.to_thread(broker.start)
    with killed_on_exit(start_receiver(tmp_path, broker.kafka, suffix)) as receiver:
        await wait_healthy(receiver)
        await wait_drained(receiver)
        assert stop(receiver) == 0, receiver.log_text()
    return receiver
