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

# For its first minutes a freshly started broker slows whatever waits on it, with a margin;
# the runs this comes from are in docs/benchmarks.md ("a young broker").
YOUNG_BROKER_SECONDS = 300.0


def young_broker_note(age: float | None) -> str | None:
    """A word for the reader when the broker is too young for Kafka-bound figures."""
    if age is None or age >= YOUNG_BROKER_SECONDS:
        return None
    return (
        f"note: the broker started {age:.0f} s ago; Kafka-bound figures read slow for the "
        f"first minutes (docs/benchmarks.md, 'a young broker'): run again after "
        f"{YOUNG_BROKER_SECONDS - age:.0f} s"
    )


def stack_up(settings: StackSettings) -> None:
    """The local stack up, with a word printed if its broker has only just started."""
    stack = Stack(settings)
    stack.up()
    note = young_broker_note(stack.kafka_age())
    if note is not None:
        print(note, flush=True)


def on_stack(
    prog: str, argv: list[str] | None, options: Callable[[argparse.ArgumentParser], None]
) -> tuple[StackSettings, argparse.Namespace]:
    """The benchmark's options parsed, and the local stack up."""
    parser = argparse.ArgumentParser(prog=prog)
    options(parser)
    args = parser.parse_args(argv if argv is not None else [])
    settings = StackSettings.from_env(os.environ)
    stack_up(settings)
    return settings, args


def calls_and_rounds(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--calls", type=int, default=6000)
    parser.add_argument("--rounds", type=int, default=5)


def main_on_stack(prog: str, run: Run, argv: list[str] | None) -> int:
    """`--calls N --rounds N`, the local stack up, the benchmark's figures printed."""
    settings, args = on_stack(prog, argv, calls_and_rounds)
    print(asyncio.run(run(settings.kafka_settings(), args.calls, args.rounds)))
    return 0
