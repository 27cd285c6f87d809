"""The receiver's settings, read once from `CALLSTREAM_INGEST_*` by the entry point."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from common.http_serving import Listen
from common.settings import load


@dataclass(frozen=True, slots=True)
class IngestSettings:
    host: str = "0.0.0.0"  # noqa: S104 - a service in a container listens on every address
    port: int = 8000
    body_limit: int = 64 * 1024
    decompressed_limit: int = 256 * 1024
    max_in_flight: int = 1024
    ack_timeout: float = 5.0  # how long Kafka may take before an event goes to the spool
    linger_ms: float = 1.0  # how long the producer gathers records into a batch
    spool_dir: Path = Path("spool")
    spool_max_bytes: int = 1 << 30
    trusted_proxies: tuple[str, ...] = ()
    retry_after: int = 2
    shutdown_timeout: float = 30.0
    body_timeout: float = 10.0  # a body must have arrived this long after its head
    # An idle connection is closed after this; it also bounds how long a request's head may
    # take to arrive (from the connection's start or the previous answer).
    keepalive: float = 75.0
    # Open connections per process; past it the oldest are closed (common.connections).
    max_connections: int = 1024

    def listen(self, *, reuse_port: bool = False) -> Listen:
        """Where the receiver listens, and its bound (`common.http_serving`)."""
        return Listen(
            "ingest",
            self.host,
            self.port,
            self.max_connections,
            "CALLSTREAM_INGEST_MAX_CONNECTIONS",
            shutdown_timeout=self.shutdown_timeout,
            keepalive=self.keepalive,
            reuse_port=reuse_port,
            backlog=2048,
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> IngestSettings:
        """`CALLSTREAM_INGEST_{FIELD}` for every field (`common.settings`)."""
        return load(cls, env, "CALLSTREAM_INGEST_")
