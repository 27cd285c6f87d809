"""`callstream stack up | down | status | env`."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time

from callstream.command import Command
from callstream.dev.stack import kafka
from callstream.dev.stack.errors import StackError
from callstream.dev.stack.settings import StackSettings
from callstream.dev.stack.stack import Stack


def options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["up", "down", "status", "env"])


def run(args: argparse.Namespace) -> int:
    settings = StackSettings.from_env(os.environ)
    stack = Stack(settings)
    action: str = args.action
    if action == "env":
        for name, value in settings.env_exports().items():
            print(f"export {name}={shlex.quote(value)}")
        return 0
    if action == "down":
        for line in stack.down() or ["nothing was running"]:
            print(line)
        return 0
    if action == "up":
        started = time.monotonic()
        try:
            done = stack.up()
        except StackError as err:
            print(f"callstream stack up: {err}", file=sys.stderr)
            return 1
        took = time.monotonic() - started
        print(f"{'; '.join(done) or 'already running'}; ready in {took:.1f}s")
        print(f"kafka {kafka.kafka_version(settings)}, state and logs in {settings.root}")
    statuses = stack.status()
    for item in statuses:
        print(item.line())
    return 0 if all(item.answering for item in statuses) else 3


COMMAND = Command(
    "stack", "local Apache Kafka and S3 for development and tests", run, options, __doc__
)
