"""callstream's enrich transform (`Enricher`) run by a Quix Streams application, exactly
once: the peer of `python -m bench enrich --peer quix`. It runs in a virtualenv of its own
(`bench.peers.venv`): quixstreams pins its own confluent-kafka and pydantic.

Reads both raw topics from the start, writes what `Enricher` returns (topic, key, value,
headers) and dead letters as `callstream enrich` does; stops after `--expected` records
and prints, as JSON, its wall and CPU seconds from its first record to its last commit.
With `--forever` it runs until SIGTERM (the latency scenario)."""

from __future__ import annotations

import argparse
import tempfile
import time
from typing import Any
from zoneinfo import ZoneInfo

from quixstreams import Application, message_context
from quixstreams.models.serializers import Serializer

from bench.measured import cpu_seconds, pipe_topics, report
from common.topics import dead_letter_headers
from processors.consumer import Record
from processors.enrich.dedupe import Deduper
from processors.enrich.service import Enricher
from processors.runtime import Rejected
from processors.transactions import Output


class OutputValue(Serializer):
    """The value of an `Output`, already encoded by the transform."""

    def __call__(self, value: Output, ctx: Any) -> bytes:
        return value.value


class Run:
    def __init__(self, app: Application, expected: int) -> None:
        self.app, self.expected, self.seen = app, expected, 0
        self.started = self.cpu = 0.0

    def count(self) -> None:
        if self.seen == 0:
            self.started, self.cpu = time.perf_counter(), cpu_seconds()
        self.seen += 1
        if self.seen == self.expected:
            self.app.stop()


def build(args: argparse.Namespace, state_dir: str) -> tuple[Application, Run]:
    topics = pipe_topics(args.raw_suffix or args.suffix, args.suffix)
    commit = {"commit_every": args.commit_every} if args.commit_every else {}
    app = Application(
        broker_address=args.bootstrap,
        consumer_group=args.group,
        auto_offset_reset="earliest",
        processing_guarantee="exactly-once",
        auto_create_topics=False,
        state_dir=state_dir,  # stateless, but Quix makes one (in the working directory)
        # The Java client's partitioner, as callstream's producers use.
        producer_extra_config={"partitioner": "murmur2_random"},
        **commit,
    )
    run = Run(app, args.expected)
    enricher = Enricher(topics, ZoneInfo("Asia/Shanghai"), Deduper())
    service = b"enrich"

    def outputs_of(value: bytes, key: bytes, timestamp: int, headers: Any) -> list[Output]:
        context = message_context()
        record = Record(
            context.topic,
            context.partition,
            context.offset,
            key,
            value,
            list(headers or ()),
            timestamp,
        )
        run.count()
        try:
            return enricher(record)
        except Rejected as err:
            dead = dead_letter_headers(
                record, service=service, reason="Rejected", detail=str(err), attempts=1
            )
            return [Output(topics.deadletter, key, value, dead)]

    outputs = {
        name: app.topic(name, key_serializer="bytes", value_serializer=OutputValue())
        for name in (topics.callstate, topics.cdr, topics.deadletter)
    }
    for name in (topics.callstate_raw, topics.cdr_raw):
        source = app.topic(name, key_deserializer="bytes", value_deserializer="bytes")
        sdf = app.dataframe(source)
        sdf = sdf.apply(outputs_of, metadata=True, expand=True)
        sdf = sdf.set_headers(lambda value, key, timestamp, headers: value.headers)
        sdf.to_topic(
            lambda value, key, timestamp, headers: outputs[value.topic], key=lambda v: v.key
        )
    return app, run


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--suffix", required=True, help="the output topics' suffix")
    parser.add_argument("--raw-suffix", default="", help="the raw topics' (default: --suffix)")
    parser.add_argument("--group", required=True)
    parser.add_argument("--commit-every", type=int, default=0, help="0: Quix's defaults")
    parser.add_argument("--expected", type=int, default=0, help="0: run until SIGTERM")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="quix-state-") as state_dir:
        app, run = build(args, state_dir)
        app.run()
    report(run.seen, time.perf_counter() - run.started, cpu_seconds() - run.cpu)


if __name__ == "__main__":
    main()
