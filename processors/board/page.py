"""The live page: `GET /` is one self-contained HTML page (no CDN, no build step), which
follows `GET /events`, a server-sent-events stream of the board's state every second."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Final

import msgspec
from aiohttp import web

from common.records import ExtensionRecord, MinuteMetricsRecord
from processors.board.state import Board

PAGE: Final = (Path(__file__).parent / "page.html").read_bytes()
BUSY: Final = frozenset({"ringing", "talking"})
_ENCODE: Final = msgspec.json.Encoder().encode


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
    async def index(request: web.Request) -> web.Response:
        return web.Response(body=PAGE, content_type="text/html", charset="utf-8")

    async def events(request: web.Request) -> web.StreamResponse:
        stream = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await stream.prepare(request)
        with contextlib.suppress(ConnectionResetError):
            while True:
                await stream.write(b"data: " + _ENCODE(snapshot(board)) + b"\n\n")
                await asyncio.sleep(every)
        return stream

    app = web.Application()
    app.router.add_get("/", index)
    app.router.add_get("/events", events)
    return app


@contextlib.asynccontextmanager
async def serving_page(board: Board, host: str, port: int) -> AsyncIterator[str]:
    """The page served until leaving; yields its URL (with the port bound, if 0 was asked)."""
    runner = web.AppRunner(page_app(board), access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    bound = runner.addresses[0][1]
    shown = "127.0.0.1" if host in {"0.0.0.0", ""} else host  # noqa: S104 - all interfaces
    try:
        yield f"http://{shown}:{bound}/"
    finally:
        await runner.cleanup()
