"""Enrich's start-up with a busy day behind it: the output topics already hold `--records`
enriched records (5M by default) when `callstream enrich` starts, as a real process.
Prints the seconds from its start to its first enriched record committed, the seconds to
all of the new raw records, and its peak RSS."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import msgspec
from confluent_kafka import Consumer, Producer, TopicPartition

from bench.outputs import committed_reader
from common.config import KafkaSettings
from common.records import CdrRecord
from common.topics import Header, Topics
from devkit.bench_cli import on_stack
from devkit.enriched import enriched_records
from devkit.ports import free_port
from devkit.proc import status_kib
from devkit.raw import publish_raw, simulated_callbacks
from devkit.topics import create_topics, delete_topics
from processors.consumer import consume_ready

PARTITIONS = 6
WITHIN = 600.0  # seconds given to enrich to get through the new raw records
Enrich = subprocess.Popen[bytes]


def fill_outputs(kafka: KafkaSettings, topics: Topics, count: int) -> None:
    """`count` enriched records, each with a record id of its own, as enrich writes them."""
    templates = [
        (
            topics.cdr if isinstance(r, CdrRecord) else topics.callstate,
            r.uuid.encode(),
            msgspec.json.encode(r),
            r.tenant.encode(),
        )
        for r in enriched_records(2000, seed=11)
    ]
    producer = Producer(
        {
            **kafka.rdkafka_settings(),
            "acks": "all",
            "linger.ms": 50,
            "partitioner": "murmur2_random",
            "queue.buffering.max.messages": 1_000_000,
        }
    )
    for index in range(count):
        topic, key, value, tenant = templates[index % len(templates)]
        headers: list[tuple[str, str | bytes | None]] = [
            (Header.RECORD_ID, f"{index:032x}".encode()),
            (Header.TENANT, tenant),
        ]
        while True:
            try:
                producer.produce(topic, value, key, headers=headers)
                break
            except BufferError:
                producer.poll(0.05)
        if index % 10_000 == 0:
            producer.poll(0)
    if producer.flush(120) != 0:
        raise RuntimeError("the output topics could not be filled")


def end_offsets(consumer: Consumer, topics: list[str]) -> list[TopicPartition]:
    ends = []
    for topic in topics:
        for partition in range(PARTITIONS):
            _, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
            ends.append(TopicPartition(topic, partition, high))
    return ends


def peak_rss_mb(pid: int) -> float:
    try:
        return status_kib(pid, "VmHWM") / 1024
    except LookupError:  # exited, not yet reaped
        return 0.0


def watch(
    kafka: KafkaSettings, topics: Topics, expected: int, started: float, proc: Enrich
) -> tuple[float | None, float | None, float]:
    """Seconds to the first new committed output record and to the last (None: not within
    `WITHIN` seconds); peak RSS (MB)."""
    consumer = committed_reader(kafka)
    consumer.assign(end_offsets(consumer, [topics.callstate, topics.cdr]))
    first: float | None = None
    seen = 0
    peak = 0.0
    deadline = time.monotonic() + WITHIN
    try:
        while seen < expected and time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"callstream enrich exited with {proc.returncode}")
            peak = max(peak, peak_rss_mb(proc.pid))
            messages = consume_ready(consumer, 1000, 0.2)
            got = sum(1 for m in messages if m.error() is None)
            if got and not seen:
                first = time.monotonic() - started
            seen += got
        peak = max(peak, peak_rss_mb(proc.pid))
    finally:
        consumer.close()
    return first, time.monotonic() - started if seen >= expected else None, peak


def start_enrich(kafka: KafkaSettings, suffix: str, log: Path, group: str = "startup") -> Enrich:
    """`callstream enrich` on the topics of `suffix`, with a group of its own."""
    env = {
        **os.environ,
        "CALLSTREAM_KAFKA_BOOTSTRAP": kafka.bootstrap,
        "CALLSTREAM_TOPIC_SUFFIX": suffix,
        "CALLSTREAM_ENRICH_GROUP": f"bench-{group}-{suffix}",
        "CALLSTREAM_INSTANCE": "bench",
        "CALLSTREAM_ENRICH_METRICS_PORT": str(free_port()),
    }
    command = [sys.executable, "-m", "callstream", "enrich"]
    with log.open("ab") as out:
        return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)


def _seconds(value: float | None) -> str:
    return f"{value:.1f} s" if value is not None else f"not within {WITHIN:.0f} s"


def stop(proc: Enrich) -> str:
    """SIGTERM, then SIGKILL after 60 s; how it ended."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return "still running after 60 s, killed"
    return f"exited {proc.returncode}"


def run(kafka: KafkaSettings, records: int, calls: int) -> str:
    suffix = f"bench-{uuid.uuid4().hex[:8]}"
    topics = Topics.with_suffix(suffix)
    asyncio.run(create_topics(kafka, topics, partitions=PARTITIONS))
    try:
        began = time.monotonic()
        fill_outputs(kafka, topics, records)
        filled = time.monotonic() - began
        items = simulated_callbacks(calls, seed=12)
        asyncio.run(publish_raw(kafka, topics, items))
        started = time.monotonic()
        log = Path(tempfile.gettempdir()) / f"enrich-startup-{suffix}.log"
        proc = start_enrich(kafka, suffix, log)
        try:
            first, last, peak = watch(kafka, topics, len(items), started, proc)
        finally:
            stopped = stop(proc)
    finally:
        asyncio.run(delete_topics(kafka, list(topics.all())))
    return "\n".join(
        [
            f"{records:,} records already in the output topics ({PARTITIONS} partitions each; "
            f"written in {filled:.0f} s), {len(items):,} new raw records",
            f"first enriched record committed {_seconds(first)} after start (target <= 30 s)",
            f"all {len(items):,} enriched {_seconds(last)} after start",
            f"peak RSS {peak:.0f} MB (target < 300 MB)",
            f"on SIGTERM: {stopped}; its log: {log}",
        ]
    )


def options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--records", type=int, default=5_000_000)
    parser.add_argument("--calls", type=int, default=2000)


def main(argv: list[str] | None = None) -> int:
    settings, args = on_stack("python -m bench enrich_startup", argv, options)
    print(run(settings.kafka_settings(), args.records, args.calls), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
