"""`callstream lake`: the raw topics, archived to S3 as gzip NDJSON by tenant and hour."""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from callstream.command import Command, print_config_option
from common.config import KafkaSettings, S3Settings
from common.runner import Probes, Started, run_service
from common.s3 import make_client
from common.settings import overridden
from common.topics import Topics
from processors.lake.service import LakeSettings, Put, lake_service


def options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--metrics-port", type=int, help="port of /healthz and /metrics")
    print_config_option(p)


@dataclass(frozen=True, slots=True)
class LakeConfig:
    kafka: KafkaSettings
    s3: S3Settings
    topics: Topics
    settings: LakeSettings

    def shown(self) -> Sequence[object]:
        return (self.settings, self.kafka, self.s3)


def load(args: argparse.Namespace) -> LakeConfig:
    settings = LakeSettings.from_env(os.environ)
    settings = overridden(settings, metrics_port=args.metrics_port)
    kafka, s3 = KafkaSettings.from_env(os.environ), S3Settings.from_env(os.environ)
    return LakeConfig(kafka, s3, Topics.from_env(os.environ), settings)


def s3_put(s3: S3Settings) -> Put:
    client = make_client(s3)

    def put(key: str, body: bytes) -> None:
        client.put_object(Bucket=s3.bucket, Key=key, Body=body, ContentType="application/gzip")

    return put


@contextlib.asynccontextmanager
async def start(config: LakeConfig) -> AsyncIterator[Started]:
    put = s3_put(config.s3)
    async with lake_service(config.kafka, config.topics, put, config.settings) as lake:
        probes = Probes(config.settings.metrics_port, lake.metrics.registry, lake.healthy)
        yield Started(lake.run, probes)


def main(args: argparse.Namespace) -> int:
    return run_service("lake", lambda: load(args), start, print_config=args.print_config)


COMMAND = Command("lake", "archive the raw topics to S3", main, options, __doc__)
