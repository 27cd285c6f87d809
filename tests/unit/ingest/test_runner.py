from __future__ import annotations

from pathlib import Path

from aiohttp import web

from common.topics import Topics
from ingest.app import build_app
from ingest.fastpath import CallbackProtocol, CallbackServer
from ingest.runner import IngestRunner
from ingest.settings import IngestSettings
from ingest.spool import Spool
from tests.support.fakes import FakeProducer, connect_to
from tests.support.sim import sim_tenants


def _app(tmp_path: Path) -> web.Application:
    spool = Spool(tmp_path, max_bytes=1 << 20)
    return build_app(IngestSettings(), sim_tenants(), Topics(), spool, connect_to(FakeProducer()))


async def test_the_runner_serves_the_fast_path_first(tmp_path: Path) -> None:
    runner = IngestRunner(_app(tmp_path))
    await runner.setup()
    try:
        server = runner.server
        assert isinstance(server, CallbackServer)
        assert isinstance(server(), CallbackProtocol)  # each connection starts on the fast path
    finally:
        await runner.cleanup()
