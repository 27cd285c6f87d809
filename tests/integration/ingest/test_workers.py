"""`callstream ingest --workers N`: N processes share the port, each with its own spool."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

from callstream.dev.demo.procs import child_pids
from devkit.ports import free_port
from devkit.sim import running_simulator
from tests.integration.conftest import TopicSetFactory
from tests.support.delivery import check_delivery
from tests.support.receiver import Receiver, tenants_file, wait_healthy
from tests.support.services import Services
from yunhu.sim.poster import TrafficSettings
from yunhu.sim.run import post_traffic


def _env(services: Services, suffix: str, port: int, folder: Path) -> dict[str, str]:
    return {
        **os.environ,
        "CALLSTREAM_KAFKA_BOOTSTRAP": services.kafka.bootstrap,
        "CALLSTREAM_TOPIC_SUFFIX": suffix,
        "CALLSTREAM_TENANTS": str(tenants_file(folder)),
        "CALLSTREAM_INGEST_HOST": "127.0.0.1",
        "CALLSTREAM_INGEST_PORT": str(port),
        "CALLSTREAM_INGEST_SPOOL_DIR": str(folder / "spool"),
    }


def _start_workers(
    env: dict[str, str], log_path: Path, *, new_session: bool = False
) -> subprocess.Popen[bytes]:
    with log_path.open("wb") as log_file:
        return subprocess.Popen(
            [sys.executable, "-m", "callstream", "ingest", "--workers", "2"],
            env=env,
            stdout=log_file,
            stderr=log_file,
            start_new_session=new_session,
        )


def _listeners(port: int) -> int:
    return Path("/proc/net/tcp").read_text().count(f":{port:04X} 00000000:0000 0A")


async def test_workers_share_the_port_and_deliver_everything(
    services: Services, topic_set: TopicSetFactory, tmp_path: Path
) -> None:
    suffix, topics = await topic_set()
    port = free_port()
    env = _env(services, suffix, port, tmp_path)
    log_path = tmp_path / "ingest.log"
    proc = _start_workers(env, log_path)
    receiver = Receiver(f"http://127.0.0.1:{port}", proc, log_path)
    log = tmp_path / "sent.ndjson"
    try:
        await wait_healthy(receiver)
        workers = child_pids(proc.pid)
        assert len(workers) == 2
        async with running_simulator() as sim:
            report = await post_traffic(
                sim, TrafficSettings(receiver.url, rate=100, calls=60, seed=6, sent_log=log)
            )
        assert _listeners(port) == 2, "both workers listen on the port"
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(60)
    assert code == 0, log_path.read_text()
    assert report.accepted == sum(report.statuses.values())
    assert sorted(p.name for p in (tmp_path / "spool").iterdir()) == ["worker-0", "worker-1"]
    delivery = await check_delivery(services.kafka, topics, log)
    assert delivery.missing == []
    assert delivery.expected == report.accepted


async def test_a_signal_to_the_whole_group_twice_is_still_a_clean_stop(
    services: Services, topic_set: TopicSetFactory, tmp_path: Path
) -> None:
    """Ctrl-C in a terminal signals the supervisor and its workers at once; the supervisor
    then signals its workers too, and an impatient user presses Ctrl-C again."""
    suffix, _ = await topic_set()
    port = free_port()
    env = _env(services, suffix, port, tmp_path)
    log_path = tmp_path / "ingest.log"
    for sig in (signal.SIGTERM, signal.SIGINT):
        # In a process group of its own, as a terminal gives it.
        proc = _start_workers(env, log_path, new_session=True)
        try:
            await wait_healthy(Receiver(f"http://127.0.0.1:{port}", proc, log_path))
            async with asyncio.timeout(30):  # both workers up: each handles the signals
                while _listeners(port) < 2:
                    await asyncio.sleep(0.05)
            os.killpg(proc.pid, sig)
            await asyncio.sleep(0.05)
            os.killpg(proc.pid, sig)  # again, during the shutdown
            code = proc.wait(60)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
        assert code == 0, f"{sig.name}: {log_path.read_text()[-3000:]}"
