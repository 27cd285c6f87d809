"""The enrich pipe running in the test's own event loop, for integration tests."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from common.config import KafkaSettings
from common.topics import Topics
from processors.enrich.service import EnrichSettings, pipe
from processors.runtime import TransactionalPipe
from tests.support.running import running


@contextlib.asynccontextmanager
async def running_enrich(
    kafka: KafkaSettings,
    topics: Topics,
    group: str,
    instance: str = "test",
    session_timeout_ms: int = 45_000,
) -> AsyncIterator[TransactionalPipe]:
    """Until the block ends, when it stops after its last batch."""
    settings = EnrichSettings(
        group_id=group, instance=instance, session_timeout_ms=session_timeout_ms
    )
    async with pipe(kafka, topics, settings) as runner, running(runner.run):
        yield runner
