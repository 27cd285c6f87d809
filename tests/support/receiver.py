"""`callstream ingest` as a real process on a real port, for integration tests."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from common.config import KafkaSettings
from common.topics import Topics
from devkit.ports import free_port
from devkit.proc import connections_settle, status_kib
from devkit.sim import TENANTS_TOML
from devkit.topics import create_topics, delete_topics
from tests.support.rawhttp import exchange, metric


@dataclass
class Receiver:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path

    def signal(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.url.removeprefix("http://").split(":")
        return host, int(port)

    def exchange(self, request: bytes) -> tuple[int, bytes]:
        """`request` sent on a connection of its own: the answer's status and body."""
        return exchange(self.address, request)

    def metric(self, name: str) -> float:
        """A sample without labels from the receiver's /metrics."""
        return metric(self.address, name)

    def rss_kib(self) -> int:
        """The receiver process's resident memory, in KiB."""
        return status_kib(self.proc.pid, "VmRSS")

    def connections_settle(self, at_most: int) -> int:
        """The connections the receiver holds on its port once they are `at_most` or
        fewer, or as many as it still held after a while."""
        return connections_settle(self.proc.pid, self.address[1], at_most)


def tenants_file(folder: Path, text: str = TENANTS_TOML) -> Path:
    path = folder / "tenants.toml"
    path.write_text(text)
    return path


def start_receiver(
    folder: Path,
    kafka: KafkaSettings,
    topic_suffix: str,
    *,
    port: int | None = None,
    extra_env: dict[str, str] | None = None,
    tenants_toml: str = TENANTS_TOML,
) -> Receiver:
    port = port or free_port()
    log = folder / f"ingest-{port}.log"
    env = {
        **os.environ,
        "CALLSTREAM_KAFKA_BOOTSTRAP": kafka.bootstrap,
        "CALLSTREAM_TOPIC_SUFFIX": topic_suffix,
        "CALLSTREAM_TENANTS": str(tenants_file(folder, tenants_toml)),
        "CALLSTREAM_INGEST_HOST": "127.0.0.1",
        "CALLSTREAM_INGEST_PORT": str(port),
        "CALLSTREAM_INGEST_SPOOL_DIR": str(folder / "spool"),
        "CALLSTREAM_INGEST_ACK_TIMEOUT": "2",
        **(extra_env or {}),
    }
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "callstream", "ingest"], env=env, stdout=out, stderr=out
        )
    return Receiver(f"http://127.0.0.1:{port}", proc, log)


async def wait_healthy(receiver: Receiver, within: float = 30.0) -> None:
    async with aiohttp.ClientSession() as session, asyncio.timeout(within):
        while True:
            assert receiver.proc.poll() is None, f"receiver exited:\n{receiver.log_text()}"
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(f"{receiver.url}/healthz") as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.1)


async def wait_drained(receiver: Receiver, within: float = 90.0) -> None:
    """Until /readyz says the spool is empty and events go straight to Kafka."""
    async with aiohttp.ClientSession() as session, asyncio.timeout(within):
        while True:
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(f"{receiver.url}/readyz") as response:
                    state = await response.json()
                    if state["spool_records"] == 0 and state["kafka"] == "direct":
                        return
            await asyncio.sleep(0.2)


def stop(receiver: Receiver, timeout: float = 30.0) -> int:
    if receiver.proc.poll() is None:
        receiver.proc.send_signal(signal.SIGTERM)
    try:
        return receiver.proc.wait(timeout)
    except subprocess.TimeoutExpired:
        receiver.proc.kill()
        return receiver.proc.wait()


@contextlib.asynccontextmanager
async def running_receiver(
    folder: Path, kafka: KafkaSettings, topic_suffix: str, **kwargs: object
) -> AsyncIterator[Receiver]:
    receiver = start_receiver(folder, kafka, topic_suffix, **kwargs)  # type: ignore[arg-type]
    try:
        await wait_healthy(receiver)
        yield receiver
    finally:
        stop(receiver)


@contextlib.contextmanager
def killed_on_exit(receiver: Receiver) -> Iterator[Receiver]:
    try:
        yield receiver
    finally:
        if receiver.proc.poll() is None:
            receiver.proc.kill()
            receiver.proc.wait()


@contextlib.contextmanager
def receiver_on_own_topics(
    kafka: KafkaSettings, folder: Path, **kwargs: object
) -> Iterator[tuple[Receiver, Topics]]:
    """A receiver process on topics of its own (deleted afterwards), for a test module;
    it must stop cleanly (exit 0)."""
    suffix = uuid.uuid4().hex[:10]
    topics = Topics.with_suffix(suffix)
    asyncio.run(create_topics(kafka, topics))
    receiver = start_receiver(folder, kafka, suffix, **kwargs)  # type: ignore[arg-type]
    try:
        asyncio.run(wait_healthy(receiver))
        yield receiver, topics
    finally:
        assert stop(receiver) == 0, receiver.log_text()[-3000:]
        asyncio.run(delete_topics(kafka, list(topics.all())))
