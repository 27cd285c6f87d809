from __future__ import annotations

from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from common.topics import Topics
from ingest.app import INGEST, build_app
from ingest.fastpath import CallbackProtocol, CallbackServer
from ingest.runner import IngestRunner, dispatcher
from ingest.settings import IngestSettings
from ingest.spool import Spool
from tests.support.fakes import FakeProducer, connect_to
from tests.support.sim import sim_tenants


def _app(tmp_path: Path) -> web.Application:
    spool = Spool(tmp_path, max_bytes=1 << 20)
    return build_app(IngestSettings(), sim_tenants(), Topics(), spool, connect_to(FakeProducer()))


async def _routed(request: web.BaseRequest) -> web.StreamResponse:
    return web.Response(status=299, text="routed")


async def test_callback_posts_skip_the_router_and_the_rest_go_through_it(tmp_path: Path) -> None:
    app = _app(tmp_path)
    app[INGEST].closing = True  # the handler answers 503 at once, before reading anything
    dispatch = dispatcher(app, _routed)
    for path in ["/callbacks/9024/callstate?key=k", "/callbacks/7001/cdr"]:
        response = await dispatch(make_mocked_request("POST", path, app=app))
        assert isinstance(response, web.Response)
        assert (response.status, response.text) == (
            503,
            '{"error":"shutting down","retry":"later"}',
        )
    for method, path in [
        ("GET", "/callbacks/9024/callstate"),
        ("POST", "/callbacks/9024/other"),
        ("POST", "/callbacks/9024/cdr/extra"),
        ("GET", "/healthz"),
    ]:
        response = await dispatch(make_mocked_request(method, path, app=app))
        assert response.status == 299, (method, path)


async def test_the_runner_serves_the_fast_path_then_the_dispatcher(tmp_path: Path) -> None:
    runner = IngestRunner(_app(tmp_path))
    await runner.setup()
    try:
        server = runner.server
        assert isinstance(server, CallbackServer)
        assert isinstance(server(), CallbackProtocol)  # each connection starts on the fast path
        assert server.routed.request_handler.__qualname__ == "dispatcher.<locals>.dispatch"
    finally:
        await runner.cleanup()
