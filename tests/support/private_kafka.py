"""A Kafka broker of one test's own, which the test may kill and restart at will."""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from callstream.dev.stack import StackSettings
from callstream.dev.stack import kafka as stack_kafka
from common.config import KafkaSettings
from devkit.ports import free_ports


@dataclass
class PrivateKafka:
    settings: StackSettings

    @classmethod
    def create(cls, folder: Path) -> PrivateKafka:
        defaults = StackSettings()
        kafka_port, controller_port = free_ports(2)
        return cls(
            StackSettings(
                root=folder,
                cache=defaults.cache,
                kafka_port=kafka_port,
                controller_port=controller_port,
                kafka_heap="512m",
            )
        )

    @property
    def kafka(self) -> KafkaSettings:
        return self.settings.kafka_settings()

    def start(self, timeout: float = 90.0) -> None:
        stack_kafka.start(self.settings)
        stack_kafka.wait_ready(self.settings, timeout)

    def kill(self) -> None:
        """SIGKILL: the broker dies mid-write, as in a real outage."""
        proc = stack_kafka.managed(self.settings)
        pid = proc.pid()
        assert pid is not None, "the private broker is not running"
        os.killpg(pid, signal.SIGKILL)
        while proc.pid() is not None:
            time.sleep(0.05)

    def stop(self) -> None:
        stack_kafka.managed(self.settings).stop(timeout=20)
