"""The receiver, started: one process, or N sharing the port (SO_REUSEPORT) under a supervisor."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from common.config import KafkaSettings
from common.http_serving import serving_http
from common.runner import Started
from common.stopping import SIGNALS, ignore_further_signals
from common.topics import Topics
from ingest.accept import Ingest
from ingest.app import RECEIVER_OPTIONS, Receiver, kafka_connector, running
from ingest.durable import DurableWriter
from ingest.settings import IngestSettings
from ingest.spool import Spool
from yunhu.tenants import Tenant

log = logging.getLogger(__name__)


@contextlib.asynccontextmanager
async def receiver(
    settings: IngestSettings,
    tenants: dict[str, Tenant],
    topics: Topics,
    kafka: KafkaSettings,
    spool_dir: Path,
    *,
    reuse_port: bool = False,
) -> AsyncIterator[Started]:
    """Listening; its `run(stop)` returns once `stop` is set, after which no new callback
    is accepted, those in flight finish and the spool is flushed."""
    spool = Spool(spool_dir, max_bytes=settings.spool_max_bytes)
    writer = DurableWriter(None, spool, ack_timeout=settings.ack_timeout)
    ingest = Ingest(settings, tenants, topics, writer)
    receiver = Receiver(ingest)
    async with (
        running(ingest, kafka_connector(kafka, settings)),
        serving(receiver, reuse_port=reuse_port) as listener,
    ):
        log.info("ingest listening", extra={"host": settings.host, "port": settings.port})

        async def until(stop: asyncio.Event) -> None:
            await stop.wait()
            log.info("stopping: no new callbacks, finishing those in flight")
            ingest.closing = True
            listener.close()  # no new connections
            # aiohttp's cleanup stops reading every connection at once, the rest of a
            # body already on its way included: let the callbacks in flight finish first.
            try:
                async with asyncio.timeout(settings.shutdown_timeout):
                    await receiver.drained()
            except TimeoutError:
                log.warning("callbacks still in flight", extra={"count": receiver.in_flight})

        yield Started(until)
    log.info("spool flushed", extra={"spooled_records_left": spool.records})


@contextlib.asynccontextmanager
async def serving(receiver: Receiver, *, reuse_port: bool) -> AsyncIterator[asyncio.AbstractServer]:
    """aiohttp's low-level server for `receiver` on a listening socket, its connections
    bounded (`common.http_serving`)."""
    ingest = receiver.ingest
    listen = ingest.settings.listen(reuse_port=reuse_port)
    async with serving_http(receiver, listen, **RECEIVER_OPTIONS) as served:
        ingest.metrics.watch_server(served)
        yield served.listener


def supervise(worker_argv: Sequence[Sequence[str]]) -> int:
    """Run one child per argv, restart any that dies, stop them all on SIGTERM/SIGINT."""
    stopping = False

    def stop(_sig: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        ignore_further_signals()

    for sig in SIGNALS:
        signal.signal(sig, stop)
    children = [subprocess.Popen(list(argv)) for argv in worker_argv]  # noqa: S603
    while not stopping:
        time.sleep(0.2)
        for index, child in enumerate(children):
            if child.poll() is not None and not stopping:
                log.warning("worker %d exited with %s; restarting", index, child.returncode)
                children[index] = subprocess.Popen(list(worker_argv[index]))  # noqa: S603
    for child in children:  # those the signal did not reach (it was sent to us alone)
        if child.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signal.SIGTERM)
    codes = [child.wait() for child in children]
    # A worker the stop signal reached before it could handle it (still starting) had
    # accepted nothing: ending by that signal is a clean stop too.
    clean = {0, -signal.SIGTERM, -signal.SIGINT}
    if any(code not in clean for code in codes):
        log.error("workers exited with %s", codes)
        return 1
    return 0


def worker_argv(argv: Sequence[str], index: int) -> list[str]:
    return [sys.executable, "-m", "callstream", *argv, "--worker-index", str(index)]
