"""`/healthz` and `/metrics` for a consumer service, on a small aiohttp server of its own."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Final

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest

from common.http_serving import Listen, Served, serving_http

# The probes' clients are the orchestrator's and Prometheus's few connections.
MAX_CONNECTIONS: Final = 64


@contextlib.asynccontextmanager
async def probes(
    host: str, port: int, registry: CollectorRegistry, healthy: Callable[[], bool]
) -> AsyncIterator[Served]:
    async def healthz(request: web.Request) -> web.Response:
        ok = healthy()
        return web.json_response({"healthy": ok}, status=200 if ok else 503)

    async def metrics(request: web.Request) -> web.Response:
        body = generate_latest(registry)
        return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4"})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    listen = Listen("probes", host, port, MAX_CONNECTIONS, "the probes' bound")
    async with serving_http(app, listen) as served:
        yield served
