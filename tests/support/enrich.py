"""The enrich pipe running in the test's own event loop, for integration tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from common.config import KafkaSettings
from common.topics import Topics
from processors.enrich.service import EnrichSettings, pipe
from processors.runtime import TransactionalPipe


@contextlib.asynccontextmanager
async def running_enrich(
    kafka: KafkaSettings,
    topics: Topics,
    group: str,
    instance: str = "test",
    session_timeout_ms: int = 45_000,
) -> AsyncIterator[TransactionalPipe]:
    """Until the block ends, when it stops after its last batch."""
    stop = asyncio.Event()
    settings = EnrichSettings(
        group_id=group, instance=instance, session_timeout_ms=session_timeout_ms
    )
    async with pipe(kafka, topics, settings) as runner:
        task = asyncio.create_task(runner.run(stop))
        try:
            yield runner
        finally:
            stop.set()
            await task
