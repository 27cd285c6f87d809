"""`callstream enrich`: raw callbacks → canonical records, exactly once."""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from callstream.command import Command, print_config_option
from common.config import KafkaSettings
from common.runner import Probes, Started, run_service
from common.settings import overridden
from common.topics import Topics
from processors.enrich.service import EnrichSettings, pipe


def options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--instance", help="stable replica name (default $CALLSTREAM_INSTANCE or 0)")
    p.add_argument("--metrics-port", type=int, help="port of /healthz and /metrics")
    print_config_option(p)


@dataclass(frozen=True, slots=True)
class EnrichConfig:
    kafka: KafkaSettings
    topics: Topics
    settings: EnrichSettings

    def shown(self) -> Sequence[object]:
        return (self.settings, self.kafka)


def load(args: argparse.Namespace) -> EnrichConfig:
    settings = EnrichSettings.from_env(os.environ)
    settings = overridden(settings, instance=args.instance, metrics_port=args.metrics_port)
    return EnrichConfig(KafkaSettings.from_env(os.environ), Topics.from_env(os.environ), settings)


@contextlib.asynccontextmanager
async def start(config: EnrichConfig) -> AsyncIterator[Started]:
    async with pipe(config.kafka, config.topics, config.settings) as runner:
        yield Started(runner.run, Probes(config.settings.metrics_port, runner.metrics.registry))


def main(args: argparse.Namespace) -> int:
    return run_service("enrich", lambda: load(args), start, print_config=args.print_config)


COMMAND = Command("enrich", "the enrichment consumer", main, options, __doc__)
