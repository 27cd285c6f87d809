"""The receiver's handler served by aiohttp's test server, with fakes for Kafka (unit tests)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import RawTestServer, TestClient

from common.http_serving import server_options
from common.topics import Topics
from devkit.sim import sim_tenants
from ingest.accept import Ingest
from ingest.app import RECEIVER_OPTIONS, Receiver, running
from ingest.durable import DurableWriter
from ingest.settings import IngestSettings
from ingest.spool import Spool
from tests.support.fakes import connect_to

Client = TestClient[web.BaseRequest, None]


def make_ingest(settings: IngestSettings, folder: Path) -> Ingest:
    spool = Spool(folder, max_bytes=1 << 20)
    writer = DurableWriter(None, spool, ack_timeout=settings.ack_timeout)
    return Ingest(settings, sim_tenants(), Topics(), writer)


@contextlib.asynccontextmanager
async def client_of(ingest: Ingest) -> AsyncIterator[Client]:
    """A client of the receiver's handler, served as `callstream ingest` serves it."""
    server = RawTestServer(Receiver(ingest))
    await server.start_server(**server_options(ingest.settings.listen(), **RECEIVER_OPTIONS))
    client: Client = TestClient(server)
    async with client:
        yield client


@contextlib.asynccontextmanager
async def serving(
    ingest: Ingest, producer: Any, *, attached: Callable[[Ingest], bool] | None = None
) -> AsyncIterator[Client]:
    """The handler served with its spool and a fake producer, once the producer is attached."""
    async with running(ingest, connect_to(producer)), client_of(ingest) as client:
        ready = attached or (lambda i: i.writer.producer is not None and not i.writer.spooling)
        for _ in range(100):  # the producer attaches in the background
            if ready(ingest):
                break
            await asyncio.sleep(0.01)
        yield client
