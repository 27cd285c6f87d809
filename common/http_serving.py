"""Every service's aiohttp server, on a listening socket of its own, guarded alike.

What a server gets, whichever service it belongs to (the receiver, the board's page, a
consumer's probes): a bound on its open connections (`common.connections`), limits on a
request's head, a documented idle keep-alive instead of aiohttp's default of an hour,
and requests aiohttp's parser refuses counted instead of logged as errors
(`common.malformed`). `ServerMetrics` shows the three on the service's /metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final

from aiohttp import web
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from common.connections import ConnectionBound, check_open_files
from common.malformed import MalformedRequests, http_log

# How large a head may be: its request line, a header line, and how many header lines.
# A connection that never finishes its head holds what it has sent of it: with the bound
# on connections, this bounds the memory such connections can take (docs/benchmarks.md,
# "Connection floods"; aiohttp's defaults let one hold about 2 MB). A request over them
# gets aiohttp's 400. The services' clients (the platform, Prometheus, the kubelet, a
# browser) send short heads.
HEAD_LIMITS: Final = {"max_line_size": 4096, "max_headers": 32, "max_field_size": 2048}
Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class Listen:
    """Where one server listens, and how many connections it keeps open."""

    name: str  # its logger is `{name}.http`
    host: str
    port: int
    max_connections: int
    setting: str  # the setting that sets `max_connections`, named in warnings and metrics
    shutdown_timeout: float = 10.0  # how long requests in flight may finish at the stop
    keepalive: float = 75.0  # an idle connection, or one whose head is not in, closes then
    reuse_port: bool = False
    backlog: int = 128


@dataclass(frozen=True, slots=True)
class Served:
    listener: asyncio.Server
    bound: ConnectionBound
    malformed: MalformedRequests

    @property
    def port(self) -> int:
        return int(self.listener.sockets[0].getsockname()[1])


@contextlib.asynccontextmanager
async def serving_http(
    handler: web.Application | Handler, listen: Listen, **options: Any
) -> AsyncIterator[Served]:
    """`handler` (an application, or a low-level handler) served on `listen` until
    leaving; then the socket is closed and the connections shut down as aiohttp's runner
    shuts them down. `options` are more of aiohttp's server options (or other values for
    those set here)."""
    malformed = MalformedRequests()
    with http_log(malformed, f"{listen.name}.http") as logger:
        runner = _runner(handler, listen, {**server_options(listen, **options), "logger": logger})
        await runner.setup()
        try:
            if runner.server is None:
                raise RuntimeError("aiohttp's runner has no server after its setup")
            served = await _listening(runner.server, listen, malformed)
            try:
                yield served
            finally:
                served.listener.close()
        finally:
            await runner.cleanup()


def server_options(listen: Listen, **options: Any) -> dict[str, Any]:
    """aiohttp's server options for `listen`: every server's (no access log, the head
    limits, its keep-alive), and `options`, which win."""
    return {"access_log": None, "keepalive_timeout": listen.keepalive, **HEAD_LIMITS, **options}


def _runner(
    handler: web.Application | Handler, listen: Listen, options: dict[str, Any]
) -> web.BaseRunner:
    if isinstance(handler, web.Application):
        return web.AppRunner(handler, shutdown_timeout=listen.shutdown_timeout, **options)
    server = web.Server(handler, **options)
    return web.ServerRunner(server, shutdown_timeout=listen.shutdown_timeout)


async def _listening(server: web.Server, listen: Listen, malformed: MalformedRequests) -> Served:
    bound = ConnectionBound(server, listen.max_connections, listen.shutdown_timeout)
    check_open_files(listen.max_connections, listen.setting)
    listener = await asyncio.get_running_loop().create_server(
        bound, listen.host, listen.port, reuse_port=listen.reuse_port, backlog=listen.backlog
    )
    return Served(listener, bound, malformed)


class ServerMetrics(Collector):
    """`{prefix}_connections`, `{prefix}_connections_closed_at_bound_total` and
    `{prefix}_malformed_requests_total` of the server being served, read at scrape time."""

    def __init__(self, prefix: str, setting: str) -> None:
        self._prefix = prefix
        self._setting = setting
        self.served: Served | None = None

    def collect(self) -> Iterator[Metric]:
        served = self.served
        yield GaugeMetricFamily(
            f"{self._prefix}_connections",
            "Open client connections, this process",
            value=served.bound.open if served is not None else 0,
        )
        yield CounterMetricFamily(
            f"{self._prefix}_connections_closed_at_bound",
            f"Connections closed because {self._setting} were open",
            value=served.bound.closed_at_bound if served is not None else 0,
        )
        yield CounterMetricFamily(
            f"{self._prefix}_malformed_requests",
            "Requests aiohttp's parser refused with 400 (framing, header limits)",
            value=served.malformed.count if served is not None else 0,
        )
