"""The receiver's settings, read once from `CALLSTREAM_INGEST_*` by the entry point."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from common.config import env_float as _float
from common.config import env_int as _int


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

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> IngestSettings:
        d = cls()
        proxies = env.get("CALLSTREAM_INGEST_TRUSTED_PROXIES", "")
        return cls(
            host=env.get("CALLSTREAM_INGEST_HOST") or d.host,
            port=_int(env, "CALLSTREAM_INGEST_PORT", d.port),
            body_limit=_int(env, "CALLSTREAM_INGEST_BODY_LIMIT", d.body_limit),
            decompressed_limit=_int(
                env, "CALLSTREAM_INGEST_DECOMPRESSED_LIMIT", d.decompressed_limit
            ),
            max_in_flight=_int(env, "CALLSTREAM_INGEST_MAX_IN_FLIGHT", d.max_in_flight),
            ack_timeout=_float(env, "CALLSTREAM_INGEST_ACK_TIMEOUT", d.ack_timeout),
            linger_ms=_float(env, "CALLSTREAM_INGEST_LINGER_MS", d.linger_ms),
            spool_dir=Path(env.get("CALLSTREAM_INGEST_SPOOL_DIR") or d.spool_dir),
            spool_max_bytes=_int(env, "CALLSTREAM_INGEST_SPOOL_MAX_BYTES", d.spool_max_bytes),
            trusted_proxies=tuple(p.strip() for p in proxies.split(",") if p.strip()),
            retry_after=_int(env, "CALLSTREAM_INGEST_RETRY_AFTER", d.retry_after),
            shutdown_timeout=_float(env, "CALLSTREAM_INGEST_SHUTDOWN_TIMEOUT", d.shutdown_timeout),
            body_timeout=_float(env, "CALLSTREAM_INGEST_BODY_TIMEOUT", d.body_timeout),
            keepalive=_float(env, "CALLSTREAM_INGEST_KEEPALIVE", d.keepalive),
        )
