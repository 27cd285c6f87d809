"""The live page: `GET /` is one self-contained HTML page (no CDN, no build step), which
follows `GET /events`, a server-sent-events stream of the board's state every second.

The streams end when the service stops (the browser's EventSource then reconnects to
whichever board answers next), so an open screen does not hold up the stop."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Final

import msgspec
from aiohttp import web
from prometheus_client import CollectorRegistry

from common.http_serving import Listen, ServerMetrics, serving_http
from common.records import ExtensionRecord, MinuteMetricsRecord
from processors.board.state import Board

PAGE: Final = (Path(__file__).parent / "page.html").read_bytes()
BUSY: Final = frozenset({"ringing", "talking"})
_ENCODE: Final = msgspec.json.Encoder().encode
# A browser's header line may be a long cookie (aiohttp's default); the other head limits
# are every server's (common.http_serving).
BROWSER_FIELD_SIZE: Final = 8190


class TenantView(msgspec.Struct, frozen=True, gc=False):
    tenant: str
    extensions: list[ExtensionRecord]
    in_progress: int
    minutes: list[MinuteMetricsRecord]


class Snapshot(msgspec.Struct, frozen=True, gc=False):
    now_ms: int
    tenants: list[TenantView]


def snapshot(board: Board) -> Snapshot:
    tenants = sorted({t for t, _ in board.extensions} | {t for t, _ in board.minutes})
    views = []
    for tenant in tenants:
        extensions = sorted(
            (e for (t, _), e in board.extensions.items() if t == tenant),
            key=lambda e: e.extnumber,
        )
        busy = sum(e.state in BUSY for e in extensions)
        views.append(TenantView(tenant, extensions, busy, board.recent(tenant)))
    return Snapshot(int(time.time() * 1000), views)


def page_app(board: Board, every: float = 1.0) -> web.Application:
    stopping = asyncio.Event()

    async def index(request: web.Request) -> web.Response:
        return web.Response(body=PAGE, content_type="text/html", charset="utf-8")

    async def events(request: web.Request) -> web.StreamResponse:
        stream = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await stream.prepare(request)
        with contextlib.suppress(ConnectionResetError):
            while not stopping.is_set():
                await stream.write(b"data: " + _ENCODE(snapshot(board)) + b"\n\n")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), every)
        return stream

    async def stop_streams(app: web.Application) -> None:
        stopping.set()

    app = web.Application()
    app.router.add_get("/", index)
    app.router.add_get("/events", events)
    app.on_shutdown.append(stop_streams)
    return app


@contextlib.asynccontextmanager
async def serving_page(
    board: Board, listen: Listen, registry: CollectorRegistry | None = None
) -> AsyncIterator[str]:
    """The page served until leaving; yields its URL (with the port bound, if 0 was asked).
    Its connections are counted in `registry`, if given."""
    async with serving_http(page_app(board), listen, max_field_size=BROWSER_FIELD_SIZE) as served:
        if registry is not None:
            metrics = ServerMetrics("callstream_board_page", listen.setting)
            metrics.served = served
            registry.register(metrics)
        shown = "127.0.0.1" if listen.host in {"0.0.0.0", ""} else listen.host  # noqa: S104
        yield f"http://{shown}:{served.port}/"
