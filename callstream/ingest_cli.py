"""`callstream ingest`: the callback receiver."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import sys
from pathlib import Path

from callstream.print_config import add_option, print_config
from common.config import ConfigError, KafkaSettings
from common.logs import setup_logging
from common.topics import Topics
from ingest.server import serve, supervise, worker_argv
from ingest.settings import IngestSettings
from yunhu.tenants import TenantsError, load_tenants


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("ingest", help="the callback receiver", description=__doc__)
    p.add_argument("--host", help="listen address (default $CALLSTREAM_INGEST_HOST or 0.0.0.0)")
    p.add_argument("--port", type=int, help="listen port (default $CALLSTREAM_INGEST_PORT or 8000)")
    p.add_argument("--workers", type=int, default=1, help="processes sharing the port")
    p.add_argument("--spool-dir", type=Path, help="spool folder (one sub-folder per worker)")
    p.add_argument("--tenants", type=Path, help="tenants TOML file (default $CALLSTREAM_TENANTS)")
    p.add_argument("--worker-index", type=int, help=argparse.SUPPRESS)
    add_option(p)
    p.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    env = os.environ
    setup_logging("ingest", env.get("CALLSTREAM_LOG_LEVEL", "INFO"))
    tenants_path = args.tenants or env.get("CALLSTREAM_TENANTS")
    if not tenants_path:
        print("callstream ingest: give --tenants FILE or set CALLSTREAM_TENANTS", file=sys.stderr)
        return 2
    try:
        settings = IngestSettings.from_env(env)
        kafka = KafkaSettings.from_env(env)
        tenants = load_tenants(Path(tenants_path))
    except (ConfigError, TenantsError) as err:
        print(f"callstream ingest: {err}", file=sys.stderr)
        return 2
    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    if args.spool_dir is not None:
        overrides["spool_dir"] = args.spool_dir
    settings = dataclasses.replace(settings, **overrides)
    if args.print_config:
        return print_config(settings, kafka)
    if args.workers > 1 and args.worker_index is None:
        base = list(sys.argv[1:])
        return supervise([worker_argv(base, i) for i in range(args.workers)])
    index = args.worker_index or 0
    spool_dir = settings.spool_dir / f"worker-{index}"
    _use_uvloop()
    asyncio.run(
        serve(
            settings, tenants, Topics.from_env(env), kafka, spool_dir, reuse_port=args.workers > 1
        )
    )
    return 0


def _use_uvloop() -> None:
    try:
        import uvloop  # noqa: PLC0415 - optional speed-up
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
