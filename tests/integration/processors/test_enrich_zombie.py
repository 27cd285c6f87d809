"""Two enrichers under traffic; each in turn frozen (SIGSTOP) past the group's session
timeout, so its partitions move to the other, then resumed (SIGCONT), as a long pause, a
stalled VM or a network partition does. The resumed one must not commit output or
offsets for partitions it lost: the committed output holds each raw record once."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path

from devkit.raw import publish_until
from tests.integration.conftest import TopicSetFactory
from tests.support.kafka import read_topic
from tests.support.lake import raw_positions
from tests.support.processes import start_service, stop_service
from tests.support.services import Services

SESSION_TIMEOUT_MS = 6000
FROZEN_SECONDS = 12.0


async def test_a_frozen_then_resumed_enricher_commits_nothing_twice(
    services: Services, topic_set: TopicSetFactory, tmp_path: Path
) -> None:
    suffix, topics = await topic_set()
    procs, logs = [], []
    for instance in ("a", "b"):
        log = tmp_path / f"enrich-{instance}.log"
        env = {
            "CALLSTREAM_KAFKA_BOOTSTRAP": services.kafka.bootstrap,
            "CALLSTREAM_TOPIC_SUFFIX": suffix,
            "CALLSTREAM_ENRICH_GROUP": f"enrich-{suffix}",
            "CALLSTREAM_INSTANCE": instance,
            "CALLSTREAM_ENRICH_SESSION_TIMEOUT_MS": str(SESSION_TIMEOUT_MS),
        }
        procs.append(start_service("enrich", env, log))
        logs.append(log)
    stop = asyncio.Event()
    traffic = asyncio.create_task(publish_until(stop, services.kafka, topics, calls=20, seed=3000))
    try:
        await asyncio.sleep(8)  # both joined, traffic flowing
        for proc in procs:
            proc.send_signal(signal.SIGSTOP)
            await asyncio.sleep(FROZEN_SECONDS)  # past the session timeout: partitions move
            proc.send_signal(signal.SIGCONT)
            await asyncio.sleep(6)  # it resumes mid-batch, is refused, rejoins
        stop.set()
        await traffic
        async with asyncio.timeout(120):
            while True:
                out = await read_topic(services.kafka, topics.callstate)
                out += await read_topic(services.kafka, topics.cdr)
                raw = await raw_positions(services.kafka, topics)
                if len(out) >= len(raw):
                    break
                for proc, log in zip(procs, logs, strict=True):
                    assert proc.poll() is None, log.read_text()[-4000:]
                await asyncio.sleep(1)
        await asyncio.sleep(3)  # anything still to come would show now
        out = await read_topic(services.kafka, topics.callstate)
        out += await read_topic(services.kafka, topics.cdr)
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            traffic.cancel()
            await traffic
        codes = [stop_service(proc) for proc in procs]
    sources = [dict(r.headers)["record-id"] for r in out]
    twice = len(sources) - len(set(sources))
    assert twice == 0, f"{twice} records committed twice"
    assert len(sources) == len(raw)
    assert codes == [0, 0], [log.read_text()[-3000:] for log in logs]
