"""Fakes for unit tests only (integration tests use the real broker)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Sent:
    topic: str
    key: bytes | None
    value: bytes
    headers: dict[str, bytes]


@dataclass
class FakeProducer:
    """Acknowledges at once, or never while `down` is set."""

    down: bool = False
    sent: list[Sent] = field(default_factory=list)

    def send(
        self, topic: str, value: bytes, key: bytes | None = None, headers: Any = None
    ) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if not self.down:
            self.sent.append(Sent(topic, key, value, dict(headers or [])))
            future.set_result(None)
        return future


def connect_to(producer: FakeProducer | None) -> Callable[[], AsyncIterator[Any]]:
    async def connect() -> AsyncIterator[Any]:
        yield producer

    return connect
