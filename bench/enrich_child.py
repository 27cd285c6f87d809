"""One pipe of `python -m bench enrich` in a process of its own, as the Quix peer runs.

python -m bench.enrich_child KIND RAW_SUFFIX SUFFIX EXPECTED
KIND is "enrich" (`callstream enrich`'s pipe) or "raw" (the same pipe copying each record
unchanged). It reads the raw topics of RAW_SUFFIX, writes the output topics of SUFFIX,
stops after EXPECTED records and prints one JSON line. Kafka from CALLSTREAM_KAFKA_*."""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid

from bench.enrich import copy_to, measure
from bench.measured import cpu_seconds, pipe_topics, report
from common.config import KafkaSettings
from processors.enrich.service import EnrichSettings, pipe


async def run(kind: str, raw_suffix: str, suffix: str, expected: int) -> tuple[int, float, float]:
    kafka = KafkaSettings.from_env(os.environ)
    topics = pipe_topics(raw_suffix, suffix)
    tag = uuid.uuid4().hex[:6]
    settings = EnrichSettings(group_id=f"bench-{kind}-{tag}", instance=f"bench-{tag}")
    async with pipe(kafka, topics, settings) as runner:
        if kind == "raw":
            runner.transform = copy_to(topics)
            runner.hooks = None
        seen, wall, cpu = await measure(runner, expected)
        closing, closing_cpu = time.perf_counter(), cpu_seconds()
    # The peer's figures end once its app has stopped, consumer and producer closed: so
    # do these.
    wall += time.perf_counter() - closing
    cpu += cpu_seconds() - closing_cpu
    return seen, wall, cpu


def main() -> int:
    kind, raw_suffix, suffix, expected = sys.argv[1:5]
    if kind not in ("enrich", "raw"):
        raise SystemExit(f"KIND is enrich or raw, not {kind!r}")
    report(*asyncio.run(run(kind, raw_suffix, suffix, int(expected))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
