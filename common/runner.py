"""The one way a long-running service runs: `run_service`.

It sets up logging, loads the service's configuration (a `ConfigError` ends the process
with exit code 2 and one line on stderr), prints it instead when asked, starts the
service, serves its probes and metrics, and stops it gracefully on the first SIGTERM or
SIGINT. A service provides two things: a `load()` that reads its settings once, and a
`start(config)` context manager that builds its clients, hands them to its handlers
and yields a `Started`.

A stop may have a deadline (`CALLSTREAM_STOP_DEADLINE`), counted from the signal: a
stop still under way then (a blocking Kafka call waiting on a broker that does not
answer, say) is cut short with exit code 3, before the orchestrator's SIGKILL, and said
in the log. Every service keeps its promises across that: consumers commit only what is
durable, and the receiver's spool is on disk.

A stop that finished may leave a worker thread blocked in a call whose answer nobody
waits for any more (an S3 upload the lake gave up on when S3 froze, say). Python would
wait for it before exiting; the process exits 0 without it `ABANDONED_GRACE_SECONDS`
after the stop, and says which threads it left.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Final, Generic, Protocol, TypeVar

import orjson
from prometheus_client import CollectorRegistry

from common.config import ConfigError
from common.gc_tuning import settle_gc
from common.logs import setup_logging
from common.probes import probes
from common.settings import describe, load
from common.stopping import Stopped, stop_on_signals, unless_stopped

log = logging.getLogger(__name__)

EXIT_CONFIG: Final = 2
EXIT_STOP_OVERRAN: Final = 3
# After a finished stop, how long worker threads may still run before the process exits
# without them (what they do, nobody waits for).
ABANDONED_GRACE_SECONDS: Final = 5.0


@dataclass(frozen=True, slots=True)
class RunnerSettings:
    """What every service reads alike, from `CALLSTREAM_{FIELD}`."""

    log_level: str = "INFO"
    # Seconds from the stop signal to a forced exit (EXIT_STOP_OVERRAN); 0: none. Where an
    # orchestrator kills after a grace period, set it a little under (deploy/ does), so the
    # process ends on its own terms and says so. None by default: a transactional stop may
    # legitimately wait out librdkafka's timeouts (processors/transactions.py).
    stop_deadline: float = 0.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> RunnerSettings:
        return load(cls, env, "CALLSTREAM_")


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


@dataclass(frozen=True, slots=True)
class Configured(Generic[C]):
    runner: RunnerSettings
    service: C


def run_service(
    name: str, load: Callable[[], C], start: Start[C], *, print_config: bool = False
) -> int:
    """The process's exit code: 0 after a graceful stop, 2 for a configuration error
    (3, from a watchdog thread, when the stop overran its deadline)."""
    config = configured(name, load)
    if config is None:
        return EXIT_CONFIG
    if print_config:
        shown = describe(config.runner, *config.service.shown())
        print(orjson.dumps(shown, option=orjson.OPT_INDENT_2).decode())
        return 0
    asyncio.run(serve(config.service, start, config.runner.stop_deadline))
    return 0


def configured(name: str, load: Callable[[], C]) -> Configured[C] | None:
    """Logging set up and the configuration loaded; None, said on stderr, if it is wrong."""
    try:
        runner = RunnerSettings.from_env(os.environ)
        setup_logging(name, runner.log_level)
        return Configured(runner, load())
    except ConfigError as err:
        print(f"callstream {name}: {err}", file=sys.stderr)
        return None


async def serve(config: C, start: Start[C], stop_deadline: float = 0.0) -> None:
    stop = stop_on_signals()
    watchdog = asyncio.create_task(_deadline_after(stop, stop_deadline)) if stop_deadline else None
    try:
        await _run(config, start, stop)
    finally:
        if watchdog is not None:
            watchdog.cancel()  # armed already, if a stop came
    log.info("stopped")
    _exit_after(ABANDONED_GRACE_SECONDS, _left_behind, 0)


async def _run(config: C, start: Start[C], stop: asyncio.Event) -> None:
    """The service started, run until `stop`, and stopped. A stop that comes while it is
    still starting (waiting for Kafka, say) ends the start-up, closing what had started."""
    async with contextlib.AsyncExitStack() as stack:
        try:
            started = await unless_stopped(stop, stack.enter_async_context(start(config)))
        except Stopped:
            log.info("stopping before start-up was done")
            return
        settle_gc()  # start-up is done: the collector's settings for the steady state
        async with _probes(started.probes):
            await started.run(stop)


async def _deadline_after(stop: asyncio.Event, seconds: float) -> None:
    """Once `stop` is set, a thread that ends the process if it still runs `seconds`
    later. A thread, not a task: what overruns may be the loop's own shutdown, which
    waits for every worker thread (one blocked in librdkafka, say)."""
    await stop.wait()
    _exit_after(seconds, _overran, EXIT_STOP_OVERRAN)


def _exit_after(seconds: float, say: Callable[[float], None], code: int) -> None:
    """A daemon thread that, `seconds` from now, says why and ends the process with
    `code`, unless the process has exited by then."""

    def end() -> None:
        say(seconds)
        for handler in logging.getLogger().handlers:
            handler.flush()
        # os._exit (documented, not private): sys.exit from this thread would end only
        # the thread, and a normal exit would wait for the threads that are stuck.
        os._exit(code)

    timer = threading.Timer(seconds, end)
    timer.daemon = True
    timer.start()


def _threads() -> list[str]:
    return sorted(t.name for t in threading.enumerate())


def _overran(seconds: float) -> None:
    log.error(
        "stopping overran CALLSTREAM_STOP_DEADLINE; exiting now",
        extra={"deadline_seconds": seconds, "threads": _threads()},
    )


def _left_behind(seconds: float) -> None:
    log.warning(
        "stopped, but worker threads are still blocked in calls nobody waits for; "
        "exiting without them",
        extra={"after_seconds": seconds, "threads": _threads()},
    )


@contextlib.asynccontextmanager
async def _probes(wanted: Probes | None) -> AsyncIterator[None]:
    if wanted is None:
        yield
        return
    async with probes("0.0.0.0", wanted.port, wanted.registry, wanted.healthy):  # noqa: S104
        yield
