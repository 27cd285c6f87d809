"""Board benchmark: the board's pipe beside the raw consume→produce pipe of `bench enrich`
(each record copied unchanged, transactional), on the same enriched topics, in one run,
the pipes taking turns. Prints records/s and records per CPU second of each, and the
board's records per CPU second as a share of the raw pipe's."""

from __future__ import annotations

import statistics
import sys
import uuid
from typing import Any

import msgspec

from bench.enrich import measure
from common.config import KafkaSettings
from common.topics import Topics
from devkit.bench_cli import main_on_stack
from devkit.enriched import enriched_records, publish_enriched
from devkit.topics import create_topics, delete_topics
from processors.board.service import BoardServiceSettings, board_pipe
from processors.transactions import Output


def _copy_to(topic: str) -> Any:
    def copy(record: Any) -> list[Output]:
        return [Output(topic, record.key, record.value or b"", record.headers)]

    return copy


async def _round(
    kafka: KafkaSettings, source: Topics, total: int, created: list[str]
) -> dict[str, tuple[float, float]]:
    out: dict[str, tuple[float, float]] = {}
    for name in ("raw pipe", "board"):
        fresh = Topics.with_suffix(f"bench-{uuid.uuid4().hex[:8]}")
        await create_topics(kafka, fresh, partitions=6)
        created.extend(fresh.all())
        topics = msgspec.structs.replace(fresh, callstate=source.callstate, cdr=source.cdr)
        settings = BoardServiceSettings(
            group_id=f"bench-board-{uuid.uuid4().hex[:6]}", instance="bench", http_port=0
        )
        async with board_pipe(kafka, topics, settings) as (runner, _):
            if name == "raw pipe":
                runner.transform = _copy_to(topics.extensions)
                runner.hooks = None
            _, wall, cpu = await measure(runner, total)
            out[name] = (wall, cpu)
    return out


async def run(kafka: KafkaSettings, calls: int, rounds: int) -> str:
    source = Topics.with_suffix(f"bench-{uuid.uuid4().hex[:8]}")
    await create_topics(kafka, source, partitions=6)
    created = list(source.all())
    try:
        # A call every 0.2 s of event time: the minutes close as they would live.
        records = enriched_records(calls, seed=3, spread_ms=200)
        await publish_enriched(kafka, source, records)
        results: dict[str, list[tuple[float, float]]] = {"raw pipe": [], "board": []}
        for index in range(rounds):
            got = await _round(kafka, source, len(records), created)
            for name, value in got.items():
                results[name].append(value)
            print(
                f"round {index + 1}: "
                + ", ".join(f"{n} {len(records) / w:,.0f} records/s" for n, (w, _) in got.items()),
                flush=True,
            )
        return _summary(len(records), rounds, results)
    finally:
        await delete_topics(kafka, created)


def _summary(total: int, rounds: int, results: dict[str, list[tuple[float, float]]]) -> str:
    lines = [f"{total} enriched records, 6 partitions, medians of {rounds} rounds"]
    for name, values in results.items():
        wall = statistics.median(w for w, _ in values)
        cpu = statistics.median(c for _, c in values)
        lines.append(
            f"{name:9} {total / wall:9,.0f} records/s   {total / cpu:9,.0f} records per CPU second"
        )
    shares = [
        raw_cpu / board_cpu
        for (_, raw_cpu), (_, board_cpu) in zip(results["raw pipe"], results["board"], strict=True)
    ]
    lines.append(
        f"board records per CPU second / raw pipe's: {statistics.median(shares):.2f}x median of "
        f"the rounds (range {min(shares):.2f}-{max(shares):.2f})"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    return main_on_stack("python -m bench board", run, argv)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
