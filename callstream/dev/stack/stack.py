"""Bring the local stack up and down as a whole, and say what runs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass

from callstream.dev.stack import kafka, s3
from callstream.dev.stack.settings import StackSettings


@dataclass(frozen=True, slots=True)
class ComponentStatus:
    name: str
    pid: int | None
    address: str
    answering: bool

    def line(self) -> str:
        state = "running" if self.pid else "stopped"
        pid = f" pid {self.pid}" if self.pid else ""
        answer = ", answering" if self.answering else (", NOT answering" if self.pid else "")
        return f"{self.name:6} {state}{pid} at {self.address}{answer}"


@contextlib.contextmanager
def _quiet_clients() -> Iterator[None]:
    """aiokafka logs every refused connection at ERROR while we poll a starting broker."""
    logger = logging.getLogger("aiokafka")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


class Stack:
    def __init__(self, settings: StackSettings) -> None:
        self.settings = settings

    def up(self) -> list[str]:
        """Start what is not running and wait until both answer; returns what it did."""
        done: list[str] = []
        settings = self.settings
        settings.root.mkdir(parents=True, exist_ok=True)
        with _quiet_clients():
            if kafka.managed(settings).pid() is None:
                kafka.start(settings)
                done.append("started kafka")
            if s3.managed(settings).pid() is None:
                s3.start(settings)
                done.append("started s3")
            started = time.monotonic()
            kafka.wait_ready(settings, settings.ready_timeout)
            s3.wait_ready(settings, max(5.0, settings.ready_timeout - (time.monotonic() - started)))
        return done

    def kafka_age(self) -> float | None:
        """Seconds since the stack started its broker; None if it runs none."""
        started = kafka.managed(self.settings).started_at()
        return None if started is None else time.time() - started

    def kafka_deleting(self) -> int:
        """Partition logs of deleted topics the stack's broker has yet to remove."""
        return kafka.deleting(self.settings)

    def down(self) -> list[str]:
        procs = (s3.managed(self.settings), kafka.managed(self.settings))
        return [f"stopped {proc.name}" for proc in procs if proc.stop()]

    def status(self) -> list[ComponentStatus]:
        settings = self.settings
        kafka_pid = kafka.managed(settings).pid()
        s3_pid = s3.managed(settings).pid()
        with _quiet_clients():
            kafka_ok = bool(kafka_pid) and asyncio.run(
                kafka.answers_metadata(settings.kafka_bootstrap)
            )
        s3_ok = bool(s3_pid) and s3.answers_bucket_call(settings)
        return [
            ComponentStatus("kafka", kafka_pid, settings.kafka_bootstrap, kafka_ok),
            ComponentStatus("s3", s3_pid, settings.s3_endpoint, s3_ok),
        ]
