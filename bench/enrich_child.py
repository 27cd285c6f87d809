"""One pipe of `python -m bench enrich` in a process of its own, as the Quix peer runs.

python -m bench.enrich_child KIND RAW_SUFFIX SUFFIX EXPECTED
KIND is "enrich" (`callstream enrich`'s pipe) or "raw" (the same pipe copying each record
unchanged). It reads the raw topics of RAW_SUFFIX, writes the output topics of SUFFIX,
stops after EXPECTED records and prints one JSON line. Kafka from CALLSTREAM_KAFKA_*."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import uuid

import msgspec

from bench.enrich import copy_to, cpu_seconds, measure
from common.config import KafkaSettings
from common.topics import Topics
from processors.enrich.service import EnrichSettings, pipe


async def run(kind: str, raw_suffix: str, suffix: str, expected: int) -> dict[str, float]:
    kafka = KafkaSettings.from_env(os.environ)
    raw = Topics.with_suffix(raw_suffix)
    topics = msgspec.structs.replace(
        Topics.with_suffix(suffix), callstate_raw=raw.callstate_raw, cdr_raw=raw.cdr_raw
    )
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
    return {"records": seen, "wall": wall, "cpu": cpu}


def main() -> int:
    kind, raw_suffix, suffix, expected = sys.argv[1:5]
    if kind not in ("enrich", "raw"):
        raise SystemExit(f"KIND is enrich or raw, not {kind!r}")
    print(json.dumps(asyncio.run(run(kind, raw_suffix, suffix, int(expected)))), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
