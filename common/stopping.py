"""How a long-running service learns to stop: the first SIGTERM or SIGINT.

Later ones are ignored. A signal can reach a process twice during one shutdown (from the
process group, as Ctrl-C in a terminal sends it, and again from a supervisor); the
second must not end, with the signal's default action, a process that is stopping
cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Coroutine
from typing import Any, Final, TypeVar

SIGNALS: Final = (signal.SIGTERM, signal.SIGINT)
T = TypeVar("T")


class Stopped(Exception):
    """The stop came before the work was done (`unless_stopped`)."""


def stop_on_signals() -> asyncio.Event:
    """An event the first SIGTERM or SIGINT sets; call from inside the running loop."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def first() -> None:
        stop.set()
        for sig in SIGNALS:
            loop.remove_signal_handler(sig)
        ignore_further_signals()

    for sig in SIGNALS:
        loop.add_signal_handler(sig, first)
    return stop


def ignore_further_signals() -> None:
    """From now on SIGTERM and SIGINT do nothing. Ignored, not merely unhandled: Python
    restores each handled signal's default action as it exits, and a signal arriving
    then would kill a process that had stopped cleanly."""
    for sig in SIGNALS:
        signal.signal(sig, signal.SIG_IGN)


async def unless_stopped(stop: asyncio.Event, work: Coroutine[Any, Any, T]) -> T:
    """What `work` returns; or, should `stop` be set first, Stopped, once `work` is
    cancelled and its own clean-up has run (closing what it had started, say)."""
    if stop.is_set():
        work.close()
        raise Stopped
    task = asyncio.ensure_future(work)
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    if task.cancelled():
        raise Stopped
    return task.result()
