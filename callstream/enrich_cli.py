"""`callstream enrich`: raw callbacks → canonical records, exactly once."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import sys

from callstream.print_config import add_option, print_config
from common.config import ConfigError, KafkaSettings
from common.gc_tuning import settle_gc
from common.logs import setup_logging
from common.probes import probes
from common.stopping import stop_on_signals
from common.topics import Topics
from processors.enrich.service import EnrichSettings, pipe


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("enrich", help="the enrichment consumer", description=__doc__)
    p.add_argument("--instance", help="stable replica name (default $CALLSTREAM_INSTANCE or 0)")
    p.add_argument("--metrics-port", type=int, help="port of /healthz and /metrics")
    add_option(p)
    p.set_defaults(handler=main)


def settings_from_env(args: argparse.Namespace) -> EnrichSettings:
    settings = EnrichSettings.from_env(os.environ)
    overrides = {"instance": args.instance, "metrics_port": args.metrics_port}
    return dataclasses.replace(settings, **{k: v for k, v in overrides.items() if v is not None})


async def serve(kafka: KafkaSettings, topics: Topics, settings: EnrichSettings) -> None:
    stop = stop_on_signals()
    async with pipe(kafka, topics, settings) as runner:
        settle_gc()  # start-up is done: the collector's settings for the steady state
        registry = runner.metrics.registry
        async with probes("0.0.0.0", settings.metrics_port, registry, lambda: True):  # noqa: S104
            await runner.run(stop)


def main(args: argparse.Namespace) -> int:
    setup_logging("enrich", os.environ.get("CALLSTREAM_LOG_LEVEL", "INFO"))
    try:
        kafka = KafkaSettings.from_env(os.environ)
        settings = settings_from_env(args)
    except ConfigError as err:
        print(f"callstream enrich: {err}", file=sys.stderr)
        return 2
    if args.print_config:
        return print_config(settings, kafka)
    asyncio.run(serve(kafka, Topics.from_env(os.environ), settings))
    return 0
