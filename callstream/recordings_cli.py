"""`callstream recordings`: fetch every answered call's recording and archive it to S3."""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from callstream.command import Command, print_config_option
from common.config import KafkaSettings, S3Settings, tenants_setting
from common.runner import Probes, Started, run_service
from common.s3 import make_client
from common.settings import overridden
from common.topics import Topics
from processors.recordings.archive import S3Archive
from processors.recordings.service import RecordingsSettings, recordings_service
from yunhu.tenants import Tenant


def options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tenants", type=Path, help="tenants TOML file (default $CALLSTREAM_TENANTS)")
    p.add_argument("--metrics-port", type=int, help="port of /healthz and /metrics")
    print_config_option(p)


@dataclass(frozen=True, slots=True)
class RecordingsConfig:
    kafka: KafkaSettings
    s3: S3Settings
    topics: Topics
    tenants: dict[str, Tenant]
    settings: RecordingsSettings

    def shown(self) -> Sequence[object]:
        return (self.settings, self.kafka, self.s3)


def load(args: argparse.Namespace) -> RecordingsConfig:
    settings = RecordingsSettings.from_env(os.environ)
    settings = overridden(settings, metrics_port=args.metrics_port)
    tenants = tenants_setting(args.tenants, os.environ)
    kafka, s3 = KafkaSettings.from_env(os.environ), S3Settings.from_env(os.environ)
    return RecordingsConfig(kafka, s3, Topics.from_env(os.environ), tenants, settings)


@contextlib.asynccontextmanager
async def start(config: RecordingsConfig) -> AsyncIterator[Started]:
    client = make_client(config.s3, max_pool=config.settings.concurrency * 2)
    archive = S3Archive(client, config.s3.bucket)
    async with recordings_service(
        config.kafka,
        config.topics,
        tenants=config.tenants,
        archive=archive,
        settings=config.settings,
    ) as service:
        registry = service.recorder.metrics.registry
        yield Started(service.run, Probes(config.settings.metrics_port, registry))


def main(args: argparse.Namespace) -> int:
    return run_service("recordings", lambda: load(args), start, print_config=args.print_config)


COMMAND = Command("recordings", "the recording archiver", main, options, __doc__)
