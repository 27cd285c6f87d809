"""Enrich benchmark: the enrich pipe beside a raw consume→produce pipe with no processing,
on the same topics and partitions, in one run (both transactional, as enrich is), and
with `--peer quix` the Quix Streams peer. Each pipe runs in a process of its own
(`bench.enrich_child`, `bench.peers.quix_enrich`), the pipes taking turns.
Prints records/s for each, the ratio, and records/s per core (records per CPU second)."""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from typing import Any

from bench.measured import child_env, cpu_seconds, measured
from bench.outputs import Written, committed_outputs, differences
from bench.peers.quix import QuixPeer, quix_peers
from common.config import KafkaSettings
from common.gc_tuning import settle_gc
from common.topics import Topics
from devkit.bench_cli import calls_and_rounds, on_stack
from devkit.raw import publish_raw, simulated_callbacks
from devkit.topics import create_named, delete_topics
from processors.runtime import TransactionalPipe
from processors.transactions import Output


class Counting:
    """Wraps a transform; the clock starts at the first record, so joining the group
    (which varies by seconds) is not part of the figure."""

    def __init__(self, inner: Any, total: int, stop: asyncio.Event) -> None:
        self.inner, self.total, self.stop, self.seen = inner, total, stop, 0
        self.started = self.cpu = 0.0

    def __call__(self, record: Any) -> list[Output]:
        if self.seen == 0:
            self.started, self.cpu = time.perf_counter(), cpu_seconds()
        self.seen += 1
        if self.seen >= self.total:
            self.stop.set()
        result: list[Output] = self.inner(record)
        return result


def copy_to(topics: Topics) -> Any:
    """The raw pipe's transform: each record unchanged to the topic enrich would write it
    to (call states to `callstate`, CDRs to `cdr`), so both pipes write the same topics
    and partitions and differ only by the processing."""

    def copy(record: Any) -> list[Output]:
        topic = topics.cdr if record.topic == topics.cdr_raw else topics.callstate
        return [Output(topic, record.key, record.value or b"", record.headers)]

    return copy


async def measure(runner: TransactionalPipe, total: int) -> tuple[int, float, float]:
    """Records seen, and wall and CPU seconds from the first to the last one's commit."""
    stop = asyncio.Event()
    counting = Counting(runner.transform, total, stop)
    runner.transform = counting
    settle_gc()  # as `callstream enrich` does once started, for either pipe
    await runner.run(stop)  # returns after the batch with the last record is committed
    return counting.seen, time.perf_counter() - counting.started, cpu_seconds() - counting.cpu


async def _round(
    kafka: KafkaSettings, raw: Topics, total: int, created: list[str], peers: list[QuixPeer]
) -> tuple[dict[str, tuple[float, float]], int]:
    """Each pipe's wall and CPU seconds; how many records each peer wrote as enrich did.
    Every pipe runs in a fresh process of its own, one after the other."""
    copied = await _fresh_suffix(kafka, created)
    enriched = await _fresh_suffix(kafka, created)
    out = {
        "raw pipe": await _ours("raw", kafka, raw, copied, total),
        "enrich": await _ours("enrich", kafka, raw, enriched, total),
    }
    topics = Topics.with_suffix(enriched)
    ours: dict[tuple[int, int], list[Written]] | None = None
    for peer in peers:
        suffix = await _fresh_suffix(kafka, created)
        out[peer.name] = await asyncio.to_thread(peer.measure, _suffix(raw), suffix, total)
        # Read once, after a peer's run: the coordinator writes a transaction's commit
        # markers after the commit returns, so right after enrich's run some may be missing.
        ours = ours or committed_outputs(kafka, _written(topics), 6)
        theirs = committed_outputs(kafka, _written(Topics.with_suffix(suffix)), 6)
        diff = differences(ours, theirs)
        if diff:  # partition, key, value and headers of every committed record, in order
            raise RuntimeError(f"{peer.name} wrote other records than enrich: {diff}")
    return out, sum(len(records) for records in (ours or {}).values())


async def _ours(
    kind: str, kafka: KafkaSettings, raw: Topics, suffix: str, total: int
) -> tuple[float, float]:
    """One of callstream's pipes (`bench.enrich_child`), writing the topics of `suffix`."""
    command = [sys.executable, "-m", "bench.enrich_child", kind, _suffix(raw), suffix, str(total)]
    env = child_env(CALLSTREAM_KAFKA_BOOTSTRAP=kafka.bootstrap)
    return await asyncio.to_thread(measured, command, env, total)


def _written(topics: Topics) -> list[str]:
    return [topics.callstate, topics.cdr, topics.deadletter]


async def _fresh_suffix(kafka: KafkaSettings, created: list[str]) -> str:
    """Output topics of their own: only those a pipe writes, since every partition created
    is work for the broker that shares the machine with the pipes (and is deleted, with
    the rest, only after the last round)."""
    suffix = f"bench-{uuid.uuid4().hex[:8]}"
    names = _written(Topics.with_suffix(suffix))
    await create_named(kafka, names, partitions=6)
    created.extend(names)
    return suffix


def _suffix(topics: Topics) -> str:
    return topics.cdr_raw.rsplit(".", 1)[1]


async def run(kafka: KafkaSettings, calls: int, rounds: int, peers: list[QuixPeer]) -> str:
    topics = Topics.with_suffix(f"bench-{uuid.uuid4().hex[:8]}")
    created = [topics.callstate_raw, topics.cdr_raw]  # deleted at the end, with every output
    await create_named(kafka, created, partitions=6)
    try:
        return await _rounds(kafka, topics, calls, rounds, created=created, peers=peers)
    finally:
        await delete_topics(kafka, created)


async def _rounds(
    kafka: KafkaSettings,
    topics: Topics,
    calls: int,
    rounds: int,
    *,
    created: list[str],
    peers: list[QuixPeer],
) -> str:
    items = simulated_callbacks(calls, seed=1)
    await publish_raw(kafka, topics, items)
    total = len(items)
    results: dict[str, list[tuple[float, float]]] = {}
    compared = 0  # records each peer wrote exactly as enrich did, over the rounds
    for index in range(rounds):
        got, identical = await _round(kafka, topics, total, created, peers)
        compared += identical
        for name, value in got.items():
            results.setdefault(name, []).append(value)
        ratio = got["raw pipe"][0] / got["enrich"][0]
        print(
            f"round {index + 1}: "
            + ", ".join(f"{n} {total / w:,.0f} records/s" for n, (w, _) in got.items())
            + f", ratio {ratio:.2f}x",
            flush=True,
        )
    lines = [
        f"{total} raw records, 6 partitions, medians of {rounds} rounds, the pipes taking turns"
    ]
    rate = {}
    for name, values in results.items():
        wall = statistics.median(w for w, _ in values)
        cpu = statistics.median(c for _, c in values)
        rate[name] = total / wall
        lines.append(
            f"{name:15} {total / wall:9,.0f} records/s   {total / cpu:9,.0f} records per CPU "
            f"second   {cpu / total * 1e6:5.1f} us CPU per record"
        )
    ratios = [r / e for (r, _), (e, _) in zip(results["raw pipe"], results["enrich"], strict=True)]
    lines.append(
        f"enrich vs raw pipe: {statistics.median(ratios):.2f}x median of the rounds' ratios "
        f"(range {min(ratios):.2f}-{max(ratios):.2f}), {rate['enrich'] / rate['raw pipe']:.2f}x "
        "of the median rates (target: does not fall below 0.87x)"
    )
    # When both pipes are bound by their own CPU, their throughput ratio tends to this.
    lines.append(
        "raw pipe CPU per record / enrich CPU per record: "
        + _paired(results["raw pipe"], results["enrich"], cpu=True)
    )
    for peer in peers:
        theirs = results[peer.name]
        lines.append(
            f"enrich vs {peer.name}: records/s {_paired(theirs, results['enrich'], cpu=False)}, "
            f"records per CPU second {_paired(theirs, results['enrich'], cpu=True)} "
            f"({_targets(peer)}); outputs identical ({compared:,} records: partition, key, "
            "value, headers)"
        )
    return "\n".join(lines)


def _targets(peer: QuixPeer) -> str:
    """What enrich must reach against this peer (median of the rounds' ratios)."""
    if peer.commit_every:
        return "target: records per CPU second >= 1.15x"
    return "targets: both >= 1.0x"


def _paired(
    theirs: list[tuple[float, float]], ours: list[tuple[float, float]], *, cpu: bool
) -> str:
    """Median (and range) of the rounds' ratios of our rate to theirs, by wall or CPU time."""
    at = 1 if cpu else 0
    ratios = [t[at] / o[at] for t, o in zip(theirs, ours, strict=True)]
    return f"{statistics.median(ratios):.2f}x (range {min(ratios):.2f}-{max(ratios):.2f})"


def options(parser: argparse.ArgumentParser) -> None:
    calls_and_rounds(parser)
    parser.add_argument(
        "--peer", choices=["quix"], help="also run Quix Streams (defaults, 500-record transactions)"
    )


def main(argv: list[str] | None = None) -> int:
    settings, args = on_stack("python -m bench enrich", argv, options)
    kafka = settings.kafka_settings()
    peers = quix_peers(kafka, settings.cache) if args.peer == "quix" else []
    print(asyncio.run(run(kafka, args.calls, args.rounds, peers)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
