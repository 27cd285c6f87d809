"""The bare low-level handler: aiohttp's `web.Server` with one handler that reads the
body and answers 200, no router, nothing else."""

from __future__ import annotations

import sys

import uvloop
from aiohttp import web

from bench.servers import serve_forever


async def handle(request: web.BaseRequest) -> web.Response:
    if request.method != "POST":  # the bench's readiness probe: no /readyz here
        return web.Response(status=404)
    await request.read()
    return web.Response(body=b'{"status":"ok"}', content_type="application/json")


def main() -> None:
    uvloop.run(serve_forever(handle, int(sys.argv[1])))


if __name__ == "__main__":
    main()
