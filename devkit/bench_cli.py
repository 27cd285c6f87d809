"""The command line of the benchmarks that run pipes on the local stack (`bench/`)."""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Callable, Coroutine
from typing import Any

from callstream.dev.stack import Stack, StackSettings
from common.config import KafkaSettings

Run = Callable[[KafkaSettings, int, int], Coroutine[Any, Any, str]]


def on_stack(
    prog: str, argv: list[str] | None, options: Callable[[argparse.ArgumentParser], None]
) -> tuple[StackSettings, argparse.Namespace]:
    """The benchmark's options parsed, and the local stack up."""
    parser = argparse.ArgumentParser(prog=prog)
    options(parser)
    args = parser.parse_args(argv if argv is not None else [])
    settings = StackSettings.from_env(os.environ)
    Stack(settings).up()
    return settings, args


def calls_and_rounds(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--calls", type=int, default=6000)
    parser.add_argument("--rounds", type=int, default=5)


def main_on_stack(prog: str, run: Run, argv: list[str] | None) -> int:
    """`--calls N --rounds N`, the local stack up, the benchmark's figures printed."""
    settings, args = on_stack(prog, argv, calls_and_rounds)
    print(asyncio.run(run(settings.kafka_settings(), args.calls, args.rounds)))
    return 0
