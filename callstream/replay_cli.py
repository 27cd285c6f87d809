"""`callstream replay reset|window|lake|deadletter`: put records back, safely repeatable."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import TYPE_CHECKING, Any

from callstream.command import Command
from callstream.failures import reported
from common.config import ConfigError, KafkaSettings, S3Settings
from common.kafka import durable_producer, stop_producer
from common.s3 import make_client
from common.topics import Topics
from processors.replay.deadletter import replay_deadletters
from processors.replay.lake import LakeStore, replay_lake
from processors.replay.progress import Progress
from processors.replay.publish import Republisher
from processors.replay.reset import GroupBusyError, apply_reset, plan_reset
from processors.replay.times import TimeError, Window, epoch_ms, parse_time
from processors.replay.window import replay_window

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import ListObjectsV2OutputTypeDef

TIME_HELP = "ISO-8601 (UTC unless a zone is given), epoch ms, now, or --to=-2h (-30m, -1d)"


def options(p: argparse.ArgumentParser) -> None:
    actions = p.add_subparsers(dest="action", required=True)
    reset = actions.add_parser("reset", help="move a group's offsets to a time")
    reset.add_argument("--group", required=True)
    reset.add_argument("--to", required=True, metavar="TIME", help=TIME_HELP)
    reset.add_argument("--topic", action="append", default=[], help="default: the group's")
    reset.add_argument("--force", action="store_true", help="even if the group has members")
    window = actions.add_parser("window", help="republish a time window to a topic")
    window.add_argument("--from-topic", required=True)
    window.add_argument("--to-topic", required=True)
    lake = actions.add_parser("lake", help="re-inject archived raw events from S3")
    lake.add_argument("--topic", required=True, help="the archived topic")
    lake.add_argument("--tenant", help="only this company code")
    lake.add_argument("--to-topic", help="default: the archived topic")
    for windowed in (window, lake):
        windowed.add_argument("--start", required=True, metavar="TIME", help=TIME_HELP)
        windowed.add_argument("--end", required=True, metavar="TIME", help=TIME_HELP)
    dead = actions.add_parser("deadletter", help="re-inject dead letters that decode now")
    dead.add_argument("--reason", help="only dead letters with this dlq-reason")
    for action in (reset, window, lake, dead):
        action.add_argument("--dry-run", action="store_true", help="count, change nothing")


@contextlib.asynccontextmanager
async def _publisher(kafka: KafkaSettings, dry_run: bool) -> AsyncIterator[Republisher]:
    if dry_run:
        yield Republisher(None)
        return
    producer = durable_producer(kafka)
    try:
        await producer.start()
        yield Republisher(producer)
    finally:
        await stop_producer(producer)


async def _reset(args: argparse.Namespace, kafka: KafkaSettings) -> str:
    to = parse_time(args.to)
    moves = await plan_reset(kafka, args.group, args.topic, epoch_ms(to), force=args.force)
    for move in moves:
        current = "-" if move.current is None else move.current
        print(f"{move.partition.topic}[{move.partition.partition}]: {current} -> {move.target}")
    if not args.dry_run:
        await apply_reset(kafka, args.group, moves)
    rewound = sum(max(0, (m.current or 0) - m.target) for m in moves)
    verb = "would move" if args.dry_run else "moved"
    return (
        f"reset {args.group}: {verb} {len(moves)} partitions to {to:%Y-%m-%dT%H:%M:%SZ}; "
        f"{rewound} records to read again"
    )


def _lake_store(s3: S3Settings) -> LakeStore:
    client: S3Client = make_client(s3)

    def pages(prefix: str, delimiter: str = "") -> Iterator[ListObjectsV2OutputTypeDef]:
        paginator = client.get_paginator("list_objects_v2")
        yield from paginator.paginate(Bucket=s3.bucket, Prefix=prefix, Delimiter=delimiter)

    def list_keys(prefix: str) -> list[str]:
        return [item["Key"] for page in pages(prefix) for item in page.get("Contents", [])]

    def list_folders(prefix: str) -> list[str]:
        below = (c["Prefix"] for page in pages(prefix, "/") for c in page.get("CommonPrefixes", []))
        return [name[len(prefix) :].rstrip("/") for name in below]

    def get_object(key: str) -> bytes:
        return client.get_object(Bucket=s3.bucket, Key=key)["Body"].read()

    return LakeStore(list_keys, list_folders, get_object, s3.prefix)


async def _republish(args: argparse.Namespace, kafka: KafkaSettings) -> str:
    progress = Progress(f"replay {args.action}" + (" (dry run)" if args.dry_run else ""))
    try:
        async with _publisher(kafka, args.dry_run) as publisher:
            await _replay(args, kafka, publisher, progress)
    finally:
        progress.close()
    return progress.summary()


async def _replay(
    args: argparse.Namespace, kafka: KafkaSettings, publisher: Republisher, progress: Progress
) -> None:
    if args.action == "window":
        window = Window(parse_time(args.start), parse_time(args.end))
        await replay_window(
            kafka, args.from_topic, args.to_topic, window, publisher=publisher, progress=progress
        )
    elif args.action == "lake":
        window = Window(parse_time(args.start), parse_time(args.end))
        store = _lake_store(S3Settings.from_env(os.environ))
        await replay_lake(
            store,
            args.topic,
            window,
            tenant=args.tenant,
            publisher=publisher,
            progress=progress,
            to_topic=args.to_topic,
        )
    else:
        topics = Topics.from_env(os.environ)
        await replay_deadletters(kafka, topics, publisher, progress, reason=args.reason)


def main(args: argparse.Namespace) -> int:
    action: Callable[[argparse.Namespace, KafkaSettings], Coroutine[Any, Any, str]] = (
        _reset if args.action == "reset" else _republish
    )

    def run() -> int:
        print(asyncio.run(action(args, KafkaSettings.from_env(os.environ))))
        return 0

    try:
        return reported(f"replay {args.action}", run)
    except (ConfigError, TimeError, ValueError) as err:
        print(f"callstream replay {args.action}: {err}", file=sys.stderr)
        return 2
    except GroupBusyError as err:
        print(f"callstream replay {args.action}: {err}", file=sys.stderr)
        return 1


COMMAND = Command("replay", "reset a group, republish a window, re-inject", main, options, __doc__)
