"""The one way a long-running service runs: `run_service`.

It sets up logging, loads the service's configuration (a `ConfigError` ends the process
with exit code 2 and one line on stderr), prints it instead when asked, starts the
service, serves its probes and metrics, and stops it gracefully on the first SIGTERM or
SIGINT. A service provides two things: a `load()` that reads its settings once, and a
`start(config)` context manager that builds its clients, hands them to its handlers
and yields a `Started`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import orjson
from prometheus_client import CollectorRegistry

from common.config import ConfigError
from common.gc_tuning import settle_gc
from common.logs import setup_logging
from common.probes import probes
from common.settings import describe
from common.stopping import stop_on_signals

log = logging.getLogger(__name__)


class Config(Protocol):
    def shown(self) -> Sequence[object]:
        """The settings `--print-config` prints (secrets masked by `describe`)."""
        ...


C = TypeVar("C", bound=Config)


@dataclass(frozen=True, slots=True)
class Probes:
    """`/healthz` and `/metrics` on a port of their own."""

    port: int
    registry: CollectorRegistry
    healthy: Callable[[], bool] = lambda: True


@dataclass(frozen=True, slots=True)
class Started:
    """A started service: `run(stop)` returns once `stop` is set and its work is done."""

    run: Callable[[asyncio.Event], Coroutine[Any, Any, None]]
    probes: Probes | None = None  # None: the service serves its own


Start = Callable[[C], AbstractAsyncContextManager[Started]]


def run_service(
    name: str, load: Callable[[], C], start: Start[C], *, print_config: bool = False
) -> int:
    """The process's exit code: 0 after a graceful stop, 2 for a configuration error."""
    config = configured(name, load)
    if config is None:
        return 2
    if print_config:
        print(orjson.dumps(describe(*config.shown()), option=orjson.OPT_INDENT_2).decode())
        return 0
    asyncio.run(serve(config, start))
    return 0


def configured(name: str, load: Callable[[], C]) -> C | None:
    """Logging set up and the configuration loaded; None, said on stderr, if it is wrong."""
    setup_logging(name, os.environ.get("CALLSTREAM_LOG_LEVEL", "INFO"))
    try:
        return load()
    except ConfigError as err:
        print(f"callstream {name}: {err}", file=sys.stderr)
        return None


async def serve(config: C, start: Start[C]) -> None:
    stop = stop_on_signals()
    async with start(config) as started:
        settle_gc()  # start-up is done: the collector's settings for the steady state
        async with _probes(started.probes):
            await started.run(stop)
    log.info("stopped")


@contextlib.asynccontextmanager
async def _probes(wanted: Probes | None) -> AsyncIterator[None]:
    if wanted is None:
        yield
        return
    async with probes("0.0.0.0", wanted.port, wanted.registry, wanted.healthy):  # noqa: S104
        yield
