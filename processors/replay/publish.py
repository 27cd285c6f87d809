"""Republishing with the idempotent producer, or only counting (`--dry-run`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any, Final

from aiokafka import AIOKafkaProducer

REPLAY: Final = "replay"  # header: which replay put the record back
REPLAY_SOURCE: Final = "replay-source"  # header: where it was (topic/partition/offset, or key)
REPLAYED_AT: Final = "replayed-at"  # header: epoch milliseconds


def replay_headers(
    headers: Sequence[tuple[str, bytes]], how: str, source: str
) -> list[tuple[str, bytes]]:
    """The record's headers, minus earlier replay and dead-letter ones, plus this replay's."""
    kept = [
        (k, v)
        for k, v in headers
        if k not in {REPLAY, REPLAY_SOURCE, REPLAYED_AT} and not k.startswith("dlq-")
    ]
    stamp = str(time.time_ns() // 1_000_000).encode()
    return [*kept, (REPLAY, how.encode()), (REPLAY_SOURCE, source.encode()), (REPLAYED_AT, stamp)]


class Republisher:
    """Sends, and waits for acknowledgements every `window` records and at the end."""

    def __init__(self, producer: AIOKafkaProducer | None, window: int = 2000) -> None:
        self.producer = producer
        self.window = window
        self._pending: list[asyncio.Future[Any]] = []
        self.sent = 0

    @property
    def dry_run(self) -> bool:
        return self.producer is None

    async def send(
        self, topic: str, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]
    ) -> None:
        self.sent += 1
        if self.producer is None:
            return
        self._pending.append(await self.producer.send(topic, value, key=key, headers=headers))
        if len(self._pending) >= self.window:
            await self.flush()

    async def flush(self) -> None:
        pending, self._pending = self._pending, []
        await asyncio.gather(*pending)
