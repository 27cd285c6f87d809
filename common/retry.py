"""Trying again with exponential backoff and jitter: the one way services wait for a
dependency (Kafka at start-up, say) instead of exiting."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class Backoff:
    """Delays that double from `first` up to `most`, each jittered by ±20 %."""

    first: float = 0.5
    most: float = 10.0

    def __post_init__(self) -> None:
        self._next = self.first

    def next(self) -> float:
        delay = self._next * random.uniform(0.8, 1.2)  # noqa: S311 - spreading retries
        self._next = min(self._next * 2, self.most)
        return delay

    def reset(self) -> None:
        self._next = self.first


async def until_done(
    attempt: Callable[[], Awaitable[T]],
    what: str,
    retry_on: tuple[type[BaseException], ...],
    backoff: Backoff | None = None,
) -> T:
    """`attempt()` again and again until it returns, waiting between failures."""
    delays = backoff or Backoff()
    while True:
        try:
            return await attempt()
        except retry_on as err:
            delay = delays.next()
            log.warning("%s failed, again in %.1fs: %r", what, delay, err)
            await asyncio.sleep(delay)
