"""`callstream lake`: the raw topics, archived to S3 as gzip NDJSON by tenant and hour."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import sys

from callstream.print_config import add_option, print_config
from common.config import ConfigError, KafkaSettings, S3Settings
from common.logs import setup_logging
from common.probes import probes
from common.s3 import make_client
from common.stopping import stop_on_signals
from common.topics import Topics
from processors.lake.service import LakeSettings, Put, lake_service


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("lake", help="archive the raw topics to S3", description=__doc__)
    p.add_argument("--metrics-port", type=int, help="port of /healthz and /metrics")
    add_option(p)
    p.set_defaults(handler=main)


def s3_put(s3: S3Settings) -> Put:
    client = make_client(s3)

    def put(key: str, body: bytes) -> None:
        client.put_object(Bucket=s3.bucket, Key=key, Body=body, ContentType="application/gzip")

    return put


async def serve(kafka: KafkaSettings, s3: S3Settings, settings: LakeSettings, port: int) -> None:
    stop = stop_on_signals()
    topics = Topics.from_env(os.environ)
    async with contextlib.AsyncExitStack() as stack:
        lake = await stack.enter_async_context(lake_service(kafka, topics, s3_put(s3), settings))
        registry = lake.metrics.registry
        await stack.enter_async_context(probes("0.0.0.0", port, registry, lake.healthy))  # noqa: S104
        await lake.run(stop)


def main(args: argparse.Namespace) -> int:
    setup_logging("lake", os.environ.get("CALLSTREAM_LOG_LEVEL", "INFO"))
    try:
        kafka = KafkaSettings.from_env(os.environ)
        s3 = S3Settings.from_env(os.environ)
        settings = LakeSettings.from_env(os.environ)
    except ConfigError as err:
        print(f"callstream lake: {err}", file=sys.stderr)
        return 2
    port = args.metrics_port if args.metrics_port is not None else settings.metrics_port
    settings = dataclasses.replace(settings, metrics_port=port)
    if args.print_config:
        return print_config(settings, kafka, s3)
    asyncio.run(serve(kafka, s3, settings, port))
    return 0
