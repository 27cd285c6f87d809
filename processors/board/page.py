"""The live page: `GET /` is one self-contained HTML page (no CDN, no build step), which
follows `GET /events`, a server-sent-events stream of the board's state every second.

The streams end when the service stops (the browser's EventSource then reconnects to
whichever board answers next), so an open screen does not hold up the stop."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
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


def _inline_hash(tag: bytes) -> str:
    """The CSP source that allows the page's one inline `<tag>` block, and nothing else."""
    body = PAGE.split(b"<" + tag + b">", 1)[1].split(b"</" + tag + b">", 1)[0]
    return "'sha256-" + base64.b64encode(hashlib.sha256(body).digest()).decode() + "'"


# The page runs its own script and style and talks to its own /events; nothing else,
# should a value from the platform ever reach it as markup.
PAGE_HEADERS: Final = {
    "Content-Security-Policy": (
        f"default-src 'none'; script-src {_inline_hash(b'script')}; "
        f"style-src {_inline_hash(b'style')}; connect-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
BUSY: Final = frozenset({"ringing", "talking"})
_ENCODE: Final = msgspec.json.Encoder().encode
# A browser's header line may be a long cookie (aiohttp's default); the other head limits
# are every server's (common.http_serving).
BROWSER_FIELD_SIZE: Final = 8190
# A screen that has not taken an event for this long is dropped.
STALL_SECONDS: Final = 10.0
PAGE_METRICS: Final = "callstream_board_page"  # the prefix of the page server's metrics


class TenantView(msgspec.Struct, frozen=True, gc=False):
    tenant: str
    extensions: list[ExtensionRecord]
    in_progress: int
    minutes: list[MinuteMetricsRecord]


class Snapshot(msgspec.Struct, frozen=True, gc=False):
    now_ms: int
    tenants: list[TenantView]


def snapshot(board: Board) -> Snapshot:
    by_tenant: dict[str, list[ExtensionRecord]] = {t: [] for t, _ in board.minutes}
    for (tenant, _), extension in board.extensions.items():
        by_tenant.setdefault(tenant, []).append(extension)
    views = []
    for tenant in sorted(by_tenant):
        extensions = sorted(by_tenant[tenant], key=lambda e: e.extnumber)
        busy = sum(e.state in BUSY for e in extensions)
        views.append(TenantView(tenant, extensions, busy, board.recent(tenant)))
    return Snapshot(int(time.time() * 1000), views)


class SharedEvent:
    """The stream's event, made at most twice a period however many screens follow the
    board: each screen costs a write, not a snapshot of every extension."""

    def __init__(self, board: Board, every: float) -> None:
        self._board = board
        self._fresh_for = every / 2  # a screen's event is never older than this
        self._made = float("-inf")
        self._event = b""

    def get(self) -> bytes:
        now = time.monotonic()
        if now - self._made >= self._fresh_for:
            self._made = now
            self._event = b"data: " + _ENCODE(snapshot(self._board)) + b"\n\n"
        return self._event


def page_app(board: Board, every: float = 1.0, stall: float = STALL_SECONDS) -> web.Application:
    stopping = asyncio.Event()
    shared = SharedEvent(board, every)

    async def index(request: web.Request) -> web.Response:
        return web.Response(
            body=PAGE, content_type="text/html", charset="utf-8", headers=PAGE_HEADERS
        )

    async def events(request: web.Request) -> web.StreamResponse:
        stream = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await stream.prepare(request)
        with contextlib.suppress(ConnectionResetError):
            while not stopping.is_set():
                try:
                    async with asyncio.timeout(stall):
                        await stream.write(shared.get())
                except TimeoutError:
                    _drop(request)
                    break
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


def _drop(request: web.Request) -> None:
    """A screen that stopped reading: its connection closed at once, the event it has
    not taken dropped with it (EventSource reconnects once the screen reads again)."""
    if request.transport is not None:
        request.transport.abort()


@contextlib.asynccontextmanager
async def serving_page(
    board: Board, listen: Listen, registry: CollectorRegistry | None = None
) -> AsyncIterator[str]:
    """The page served until leaving; yields its URL (with the port bound, if 0 was asked).
    Its connections are counted in `registry`, if given."""
    async with serving_http(page_app(board), listen, max_field_size=BROWSER_FIELD_SIZE) as served:
        if registry is not None:
            metrics = ServerMetrics(PAGE_METRICS, listen.setting)
            metrics.served = served
            registry.register(metrics)
        shown = "127.0.0.1" if listen.host in {"0.0.0.0", ""} else listen.host  # noqa: S104
        yield f"http://{shown}:{served.port}/"
