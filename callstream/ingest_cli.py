"""`callstream ingest`: the callback receiver."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from callstream.command import Command, print_config_option
from common.config import KafkaSettings, tenants_setting
from common.runner import Started, configured, run_service
from common.settings import overridden
from common.topics import Topics
from ingest.server import receiver, supervise, worker_argv
from ingest.settings import IngestSettings
from yunhu.tenants import Tenant


def options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", help="listen address (default $CALLSTREAM_INGEST_HOST or 0.0.0.0)")
    p.add_argument("--port", type=int, help="listen port (default $CALLSTREAM_INGEST_PORT or 8000)")
    p.add_argument("--workers", type=int, default=1, help="processes sharing the port")
    p.add_argument("--spool-dir", type=Path, help="spool folder (one sub-folder per worker)")
    p.add_argument("--tenants", type=Path, help="tenants TOML file (default $CALLSTREAM_TENANTS)")
    p.add_argument("--worker-index", type=int, help=argparse.SUPPRESS)
    print_config_option(p)


@dataclass(frozen=True, slots=True)
class IngestConfig:
    settings: IngestSettings
    kafka: KafkaSettings
    topics: Topics
    tenants: dict[str, Tenant]
    worker: int  # this process's index among the workers sharing the port
    workers: int

    def shown(self) -> Sequence[object]:
        return (self.settings, self.kafka)


def load(args: argparse.Namespace) -> IngestConfig:
    settings = IngestSettings.from_env(os.environ)
    settings = overridden(settings, host=args.host, port=args.port, spool_dir=args.spool_dir)
    tenants = tenants_setting(args.tenants, os.environ)
    kafka, topics = KafkaSettings.from_env(os.environ), Topics.from_env(os.environ)
    return IngestConfig(settings, kafka, topics, tenants, args.worker_index or 0, args.workers)


def start(config: IngestConfig) -> contextlib.AbstractAsyncContextManager[Started]:
    spool_dir = config.settings.spool_dir / f"worker-{config.worker}"
    return receiver(
        config.settings,
        config.tenants,
        config.topics,
        config.kafka,
        spool_dir,
        reuse_port=config.workers > 1,
    )


def main(args: argparse.Namespace) -> int:
    if args.workers > 1 and args.worker_index is None and not args.print_config:
        if configured("ingest", lambda: load(args)) is None:  # each worker would fail so
            return 2
        return supervise([worker_argv(sys.argv[1:], i) for i in range(args.workers)])
    _use_uvloop()
    return run_service("ingest", lambda: load(args), start, print_config=args.print_config)


def _use_uvloop() -> None:
    try:
        import uvloop  # noqa: PLC0415 - optional speed-up
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


COMMAND = Command("ingest", "the callback receiver", main, options, __doc__)
