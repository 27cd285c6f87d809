"""Recordings stopped while S3 is frozen (SIGSTOP: it holds every connection and answers
nothing): the archives under way are given up after the stop's bound, the process exits
0 soon after without waiting for the S3 calls still blocked in its threads, and nothing is
lost: the next start archives and announces every recording."""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
import time
from pathlib import Path

from common.runner import ABANDONED_GRACE_SECONDS
from devkit.sim import running_simulator, sim_tenants_toml
from tests.integration.conftest import TopicSetFactory
from tests.integration.processors.test_recordings import (
    answered_cdrs,
    publish_cdrs,
    wait_announced,
)
from tests.support.private_s3 import PrivateS3
from tests.support.processes import start_service, stop_service
from tests.support.services import Services

FINISH_SECONDS = 3.0  # the batches' bound at the stop (20 s by default)


async def test_recordings_stopped_while_s3_is_frozen_exit_0_in_time_and_lose_nothing(
    services: Services, topic_set: TopicSetFactory, tmp_path: Path, private_s3: PrivateS3
) -> None:
    suffix, topics = await topic_set()
    logs = [tmp_path / "recordings-1.log", tmp_path / "recordings-2.log"]
    procs: list[subprocess.Popen[bytes]] = []
    try:
        async with running_simulator() as sim:
            tenants = tmp_path / "tenants.toml"
            tenants.write_text(sim_tenants_toml(sim.settings.base_url))
            env = {
                **dataclasses.replace(services, s3=private_s3.s3).env(),
                "CALLSTREAM_TOPIC_SUFFIX": suffix,
                "CALLSTREAM_TENANTS": str(tenants),
                "CALLSTREAM_RECORDINGS_GROUP": f"recordings-{suffix}",
                "CALLSTREAM_STOP_DEADLINE": "0",
                "CALLSTREAM_RECORDINGS_STOP_FINISH_SECONDS": str(FINISH_SECONDS),
            }
            cdrs = answered_cdrs(sim, 4, seed=71)
            await asyncio.to_thread(private_s3.freeze)
            procs.append(start_service("recordings", env, logs[0]))
            await publish_cdrs(services, topics, cdrs)
            await asyncio.sleep(8)  # downloaded; the archives wait on S3
            signalled = time.monotonic()
            code = await asyncio.to_thread(stop_service, procs[0])
            took = time.monotonic() - signalled
            await asyncio.to_thread(private_s3.thaw)
            log = logs[0].read_text()
            assert code == 0, log[-3000:]
            assert took < FINISH_SECONDS + ABANDONED_GRACE_SECONDS + 10, took
            assert "batches left unfinished" in log
            assert "nobody waits for" in log, "the S3 calls were still blocked at the exit"
            procs.append(start_service("recordings", env, logs[1]))
            announced = await wait_announced(services, topics, len(cdrs), 90)
            assert stop_service(procs[1]) == 0, logs[1].read_text()[-3000:]
        assert {a.uuid for a in announced} == {c.uuid for c in cdrs}
    finally:
        for proc in procs:
            if proc.poll() is None:
                stop_service(proc)
