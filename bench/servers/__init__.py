"""Baseline servers that benchmarks measure callstream against."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web


async def serve_forever(
    handle: Callable[[web.BaseRequest], Awaitable[web.StreamResponse]], port: int
) -> None:
    """`handle` as aiohttp's low-level server on 127.0.0.1:`port`, until killed."""
    runner = web.ServerRunner(web.Server(handle, access_log=None))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await asyncio.Event().wait()
