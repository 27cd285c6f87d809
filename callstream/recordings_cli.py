"""`callstream recordings`: fetch every answered call's recording and archive it to S3."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import sys
from pathlib import Path

from callstream.print_config import add_option, print_config
from common.config import ConfigError, KafkaSettings, S3Settings
from common.logs import setup_logging
from common.probes import probes
from common.s3 import make_client
from common.stopping import stop_on_signals
from common.topics import Topics
from processors.recordings.archive import S3Archive
from processors.recordings.service import RecordingsSettings, recordings_service
from yunhu.tenants import Tenant, TenantsError, load_tenants


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("recordings", help="the recording archiver", description=__doc__)
    p.add_argument("--tenants", type=Path, help="tenants TOML file (default $CALLSTREAM_TENANTS)")
    p.add_argument("--metrics-port", type=int, help="port of /healthz and /metrics")
    add_option(p)
    p.set_defaults(handler=main)


async def serve(
    kafka: KafkaSettings,
    s3: S3Settings,
    topics: Topics,
    *,
    tenants: dict[str, Tenant],
    settings: RecordingsSettings,
    metrics_port: int,
) -> None:
    stop = stop_on_signals()
    client = make_client(s3, max_pool=settings.concurrency * 2)
    archive = S3Archive(client, s3.bucket)
    async with recordings_service(
        kafka, topics, tenants=tenants, archive=archive, settings=settings
    ) as service:
        registry = service.recorder.metrics.registry
        async with probes("0.0.0.0", metrics_port, registry, lambda: True):  # noqa: S104
            await service.run(stop)


def main(args: argparse.Namespace) -> int:
    setup_logging("recordings", os.environ.get("CALLSTREAM_LOG_LEVEL", "INFO"))
    tenants_path = args.tenants or os.environ.get("CALLSTREAM_TENANTS")
    if not tenants_path:
        print(
            "callstream recordings: give --tenants FILE or set CALLSTREAM_TENANTS", file=sys.stderr
        )
        return 2
    try:
        kafka = KafkaSettings.from_env(os.environ)
        s3 = S3Settings.from_env(os.environ)
        settings = RecordingsSettings.from_env(os.environ)
        tenants = load_tenants(Path(tenants_path))
    except (ConfigError, TenantsError) as err:
        print(f"callstream recordings: {err}", file=sys.stderr)
        return 2
    port = args.metrics_port if args.metrics_port is not None else settings.metrics_port
    settings = dataclasses.replace(settings, metrics_port=port)
    if args.print_config:
        return print_config(settings, kafka, s3)
    topics = Topics.from_env(os.environ)
    asyncio.run(serve(kafka, s3, topics, tenants=tenants, settings=settings, metrics_port=port))
    return 0
