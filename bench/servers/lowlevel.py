"""The bare low-level handler: aiohttp's `web.Server` with one handler that reads the
body and answers 200, no router, nothing else."""

from __future__ import annotations

import asyncio
import sys

import uvloop
from aiohttp import web


async def handle(request: web.BaseRequest) -> web.Response:
    if request.method != "POST":  # the bench's readiness probe: no /readyz here
        return web.Response(status=404)
    await request.read()
    return web.Response(body=b'{"status":"ok"}', content_type="application/json")


async def serve(port: int) -> None:
    runner = web.ServerRunner(web.Server(handle, access_log=None))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await asyncio.Event().wait()


def main() -> None:
    uvloop.run(serve(int(sys.argv[1])))


if __name__ == "__main__":
    main()
