"""`callstream topics create|verify|schemas`: the topic contracts on a cluster."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from callstream.command import Command
from callstream.failures import reported
from common.config import ConfigError, KafkaSettings
from common.kafka import ensure_topics, kafka_admin
from common.schemas import render, topic_schemas, write_all
from common.topic_catalog import TopicSettings, topic_specs, verify_topics
from common.topics import Topics


def options(p: argparse.ArgumentParser) -> None:
    actions = p.add_subparsers(dest="action", required=True)
    actions.add_parser("create", help="create every topic that does not exist yet")
    actions.add_parser("verify", help="exit 1 unless every topic exists as configured")
    schemas = actions.add_parser("schemas", help="print (or write) the JSON Schemas")
    schemas.add_argument("--topic", choices=sorted(topic_schemas()), help="only this topic's")
    schemas.add_argument("--write", type=Path, metavar="DIR", help="write one file per topic")


async def _create(kafka: KafkaSettings, topics: Topics, settings: TopicSettings) -> int:
    specs = topic_specs(topics, settings)
    async with kafka_admin(kafka) as admin:
        await ensure_topics(admin, specs)
        problems = await verify_topics(admin, specs)
    for spec in specs:
        print(f"{spec.name}: {spec.partitions} partitions, replication {spec.replication}")
    for line in problems:  # existing topics that differ are reported, never altered
        print(f"differs: {line}", file=sys.stderr)
    return 0


async def _verify(kafka: KafkaSettings, topics: Topics, settings: TopicSettings) -> int:
    async with kafka_admin(kafka) as admin:
        problems = await verify_topics(admin, topic_specs(topics, settings))
    for line in problems:
        print(line)
    print("topics: as configured" if not problems else f"topics: {len(problems)} differences")
    return 1 if problems else 0


def main(args: argparse.Namespace) -> int:
    if args.action == "schemas":
        if args.write:
            for path in write_all(args.write):
                print(path)
        else:  # one JSON document: the schema, or {topic: schema} for all
            every = topic_schemas()
            sys.stdout.write(render(every[args.topic] if args.topic else every).decode())
        return 0
    try:
        kafka = KafkaSettings.from_env(os.environ)
        settings = TopicSettings.from_env(os.environ)
    except ConfigError as err:
        print(f"callstream topics: {err}", file=sys.stderr)
        return 2
    topics = Topics.from_env(os.environ)
    action = _create if args.action == "create" else _verify
    return reported(f"topics {args.action}", lambda: asyncio.run(action(kafka, topics, settings)))


COMMAND = Command(
    "topics", "create or verify the topics; print their schemas", main, options, __doc__
)
