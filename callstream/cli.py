"""The one command line: `callstream <service> …`."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from callstream import (
    bucket_cli,
    enrich_cli,
    ingest_cli,
    lake_cli,
    recordings_cli,
    replay_cli,
    sim_cli,
    topics_cli,
)
from callstream.demo import run as run_cli
from callstream.stack import cli as stack_cli


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="callstream", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    stack_cli.add_parser(sub)
    sim_cli.add_parser(sub)
    ingest_cli.add_parser(sub)
    enrich_cli.add_parser(sub)
    recordings_cli.add_parser(sub)
    lake_cli.add_parser(sub)
    topics_cli.add_parser(sub)
    replay_cli.add_parser(sub)
    run_cli.add_parser(sub)
    bucket_cli.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except BrokenPipeError:  # `callstream … | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
