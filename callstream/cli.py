"""The one command line: `callstream <command> …`."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
from collections.abc import Callable, Sequence

from callstream import (
    board_cli,
    bucket_cli,
    enrich_cli,
    ingest_cli,
    lake_cli,
    recordings_cli,
    replay_cli,
    sim_cli,
    topics_cli,
)
from callstream.command import Command

# The registry: a new command is one module and one line here.
COMMANDS: tuple[Command, ...] = (
    sim_cli.COMMAND,
    ingest_cli.COMMAND,
    enrich_cli.COMMAND,
    recordings_cli.COMMAND,
    lake_cli.COMMAND,
    board_cli.COMMAND,
    topics_cli.COMMAND,
    replay_cli.COMMAND,
    bucket_cli.COMMAND,
)


def dev_commands() -> tuple[Command, ...]:
    """`stack` and `run`, where the developer tools are installed (not in the image)."""
    if importlib.util.find_spec("callstream.dev") is None:
        return ()
    found: tuple[Command, ...] = importlib.import_module("callstream.dev").COMMANDS
    return found


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="callstream", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for command in (*dev_commands(), *COMMANDS):
        p = sub.add_parser(command.name, help=command.help, description=command.description)
        command.options(p)
        p.set_defaults(handler=command.main)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except BrokenPipeError:  # `callstream … | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
