"""The command line of the benchmarks that run pipes on the local stack (`bench/`)."""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import Callable, Coroutine
from typing import Any

from callstream.dev.stack import Stack, StackSettings
from common.config import KafkaSettings

Run = Callable[[KafkaSettings, int, int], Coroutine[Any, Any, str]]

# For its first minutes a freshly started broker slows whatever waits on it, with a margin;
# the runs this comes from are in docs/benchmarks.md ("a young broker").
YOUNG_BROKER_SECONDS = 300.0
# Kafka removes a deleted topic's logs a minute after the deletion. Until it has, a
# latency run reads slow, as just after `bench enrich` has deleted its topics
# (docs/benchmarks.md, Enrich, session 24). So a bench first waits, up to this long.
DELETIONS_WAIT_SECONDS = 180.0


def young_broker_note(age: float | None) -> str | None:
    """A word for the reader when the broker is too young for Kafka-bound figures."""
    if age is None or age >= YOUNG_BROKER_SECONDS:
        return None
    return (
        f"note: the broker started {age:.0f} s ago; Kafka-bound figures read slow for the "
        f"first minutes (docs/benchmarks.md, 'a young broker'): run again after "
        f"{YOUNG_BROKER_SECONDS - age:.0f} s"
    )


def wait_for_deletions(
    pending: Callable[[], int], limit: float = DELETIONS_WAIT_SECONDS, pause: float = 1.0
) -> str | None:
    """Waits, up to `limit` seconds, while the broker removes the logs of topics deleted
    before (`pending` counts them); a word for the reader if it had to."""
    started = time.monotonic()
    first = left = pending()
    while left and time.monotonic() - started < limit:
        time.sleep(pause)
        left = pending()
    if not first:
        return None
    waited = time.monotonic() - started
    if left:
        return (
            f"note: after {waited:.0f} s the broker still had {left} partition logs of "
            "deleted topics to remove; Kafka-bound figures may read slow"
        )
    return (
        f"note: waited {waited:.0f} s for the broker to remove {first} partition logs of "
        "deleted topics"
    )


def stack_up(settings: StackSettings) -> None:
    """The local stack up, with a word printed if its broker has only just started, once
    it has removed the topics an earlier run deleted."""
    stack = Stack(settings)
    stack.up()
    for note in (young_broker_note(stack.kafka_age()), wait_for_deletions(stack.kafka_deleting)):
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
