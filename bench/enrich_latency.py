"""End-to-end latency of enrich at an offered load: raw records are produced at `--rate`
records/s for `--seconds`, and each enriched record's latency is the time from its raw
record's produce (its `received-at` header, carried into `origin.received_at_ms`) to when
a `read_committed` consumer of the output sees it. `callstream enrich` runs as a process;
with `--peer quix` the Quix Streams peer (defaults, 500-record transactions) runs the same
load after it, each with topics and a group of its own."""

from __future__ import annotations

import argparse
import asyncio
import functools
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
from confluent_kafka import OFFSET_BEGINNING, Producer, TopicPartition

from bench.enrich_startup import start_enrich
from bench.outputs import committed_reader
from bench.peers.quix import QuixPeer, quix_peers
from common.config import KafkaSettings
from common.topics import Topics
from devkit.bench_cli import on_stack
from devkit.raw import raw_headers, simulated_callbacks
from devkit.topics import create_topics, delete_topics
from processors.consumer import consume_ready
from yunhu.sim.traffic import Callback

PARTITIONS = 6
Start = Callable[[str], subprocess.Popen[bytes] | subprocess.Popen[str]]


class _Origin(msgspec.Struct):
    received_at_ms: int


class _Enriched(msgspec.Struct):
    origin: _Origin


_DECODE = msgspec.json.Decoder(_Enriched)


def producer(kafka: KafkaSettings) -> Producer:
    config = {**kafka.rdkafka_settings(), "acks": "all", "linger.ms": 2}
    return Producer({**config, "partitioner": "murmur2_random"})


def offer(producer: Producer, topics: Topics, items: list[Callback], rate: int) -> None:
    """Each callback produced at its slot of a `rate`-per-second schedule, stamped then."""
    began = time.monotonic()
    for index, item in enumerate(items):
        delay = began + index / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        headers: Any = raw_headers(item, f"ev-{index}")
        producer.produce(topics.raw(item.kind), item.body, item.uuid.encode(), headers=headers)
        producer.poll(0)
    if producer.flush(60) != 0:
        raise RuntimeError("the offered load was not all acknowledged")


class Watcher(threading.Thread):
    """Reads the output as it is committed: (produced at, milliseconds to visible) of each
    record. Assigned, not subscribed: a group's join would delay the first records."""

    def __init__(self, kafka: KafkaSettings, topics: Topics) -> None:
        super().__init__(daemon=True)
        self.seen: list[tuple[float, float]] = []
        self.stop = threading.Event()
        self._consumer = committed_reader(kafka, **{"fetch.wait.max.ms": 10})
        self._consumer.assign(
            [
                TopicPartition(topic, partition, OFFSET_BEGINNING)
                for topic in (topics.callstate, topics.cdr)
                for partition in range(PARTITIONS)
            ]
        )

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                for message in consume_ready(self._consumer, 1000, 0.1):
                    if message.error() is None:
                        now_ms = time.time() * 1000
                        sent_ms = _DECODE.decode(message.value() or b"").origin.received_at_ms
                        self.seen.append((sent_ms, now_ms - sent_ms))
        finally:
            self._consumer.close()

    def wait_for(self, count: int, within: float) -> bool:
        deadline = time.monotonic() + within
        while len(self.seen) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return len(self.seen) >= count


def _enrich(kafka: KafkaSettings, log: Path) -> Start:
    return functools.partial(start_enrich, kafka, log=log, group="latency")


def _start_peer(peer: QuixPeer, suffix: str) -> subprocess.Popen[str]:
    return peer.start(suffix, suffix)


def one(kafka: KafkaSettings, start: Start, items: list[Callback], rate: int) -> str:
    suffix = f"bench-{uuid.uuid4().hex[:8]}"
    topics = Topics.with_suffix(suffix)
    asyncio.run(create_topics(kafka, topics, partitions=PARTITIONS))
    proc = start(suffix)
    watcher = Watcher(kafka, topics)
    watcher.start()
    try:
        # Ready: a second of the load has come through (the group joined, every
        # partition assigned, the pipe warm); the seconds after it are measured.
        warm, rest = items[:rate], items[rate:]
        load = producer(kafka)
        offer(load, topics, warm, rate)
        if not watcher.wait_for(len(warm), within=120):
            raise RuntimeError("the runtime did not get through its warm-up within 120 s")
        since_ms = int(time.time() * 1000)  # as the stamps: whole milliseconds
        offer(load, topics, rest, rate)
        watcher.wait_for(len(items), within=300)
    finally:
        watcher.stop.set()
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
        watcher.join()
        asyncio.run(delete_topics(kafka, list(topics.all())))
    measured = [latency for sent_ms, latency in watcher.seen if sent_ms >= since_ms]
    if len(measured) < len(rest):
        return f"only {len(measured)} of {len(rest)} records came through"
    cuts = statistics.quantiles(measured, n=100)
    return f"p50 {cuts[49]:5.0f} ms   p99 {cuts[98]:5.0f} ms   max {max(measured):5.0f} ms"


def run(kafka: KafkaSettings, stack_dir: Path, rate: int, seconds: float, peer: str) -> str:
    items: list[Callback] = []
    seed = 40
    wanted = int(rate * (seconds + 1))  # a second of warm-up first
    while len(items) < wanted:
        seed += 1
        items.extend(simulated_callbacks(2000, seed=seed))
    items = items[:wanted]
    log = Path(tempfile.gettempdir()) / f"enrich-latency-{uuid.uuid4().hex[:8]}.log"
    runtimes: list[tuple[str, Start]] = [("enrich", _enrich(kafka, log))]
    peers = quix_peers(kafka, stack_dir) if peer == "quix" else []
    runtimes.extend((q.name, functools.partial(_start_peer, q)) for q in peers)
    lines = [
        f"{len(items) - rate:,} raw records offered at {rate:,}/s after a second of warm-up, "
        "produce → visible to a read_committed consumer (target p99 <= 1000 ms)"
    ]
    for name, start in runtimes:
        lines.append(f"{name:15} {one(kafka, start, items, rate)}")
        print(lines[-1], flush=True)
    return "\n".join(lines)


def options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rate", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=12.0)
    parser.add_argument("--peer", choices=["quix"])


def main(argv: list[str] | None = None) -> int:
    settings, args = on_stack("python -m bench enrich_latency", argv, options)
    print(run(settings.kafka_settings(), settings.cache, args.rate, args.seconds, args.peer or ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
