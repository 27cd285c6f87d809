"""Where the local stack lives and which loopback ports it binds, read from the environment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from common.config import KafkaSettings, S3Settings

PROJECT_ROOT = Path(__file__).resolve().parents[3]
HOST = "127.0.0.1"


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        port = int(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a port number") from None
    if not 0 < port < 65536:
        raise ValueError(f"{name}={port} is not a port number")
    return port


@dataclass(frozen=True, slots=True)
class StackSettings:
    root: Path = PROJECT_ROOT / ".stack"
    project: Path = PROJECT_ROOT
    cache: Path = PROJECT_ROOT / ".stack"  # where resolved Kafka jars are kept
    kafka_port: int = 9092
    controller_port: int = 9093
    s3_port: int = 8333
    # SeaweedFS runs master, volume, filer and admin servers beside S3; their HTTP
    # ports are base+333/+80/+888/+646 and their gRPC ports 10000 above those.
    seaweed_port_base: int = 19000
    s3_access_key: str = "callstream"
    s3_secret_key: str = "callstream-local-secret"  # noqa: S105 - local development only
    s3_bucket: str = "callstream"
    kafka_heap: str = "768m"
    ready_timeout: float = 90.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> StackSettings:
        default = cls()
        root = env.get("CALLSTREAM_STACK_DIR")
        return cls(
            root=Path(root).resolve() if root else default.root,
            kafka_port=_port(env, "CALLSTREAM_STACK_KAFKA_PORT", default.kafka_port),
            controller_port=_port(env, "CALLSTREAM_STACK_CONTROLLER_PORT", default.controller_port),
            s3_port=_port(env, "CALLSTREAM_STACK_S3_PORT", default.s3_port),
            seaweed_port_base=_port(
                env, "CALLSTREAM_STACK_SEAWEED_PORT_BASE", default.seaweed_port_base
            ),
            s3_bucket=env.get("CALLSTREAM_S3_BUCKET") or default.s3_bucket,
        )

    @property
    def kafka_bootstrap(self) -> str:
        return f"{HOST}:{self.kafka_port}"

    @property
    def s3_endpoint(self) -> str:
        return f"http://{HOST}:{self.s3_port}"

    @property
    def seaweed_ports(self) -> dict[str, int]:
        base = self.seaweed_port_base
        return {"master": base + 333, "volume": base + 80, "filer": base + 888, "admin": base + 646}

    def kafka_settings(self) -> KafkaSettings:
        return KafkaSettings(bootstrap=self.kafka_bootstrap)

    def s3_settings(self) -> S3Settings:
        return S3Settings(
            endpoint=self.s3_endpoint,
            bucket=self.s3_bucket,
            access_key_id=self.s3_access_key,
            secret_access_key=self.s3_secret_key,
        )

    def env_exports(self) -> dict[str, str]:
        """What a shell needs to talk to this stack (see `callstream stack env`)."""
        return {
            "CALLSTREAM_KAFKA_BOOTSTRAP": self.kafka_bootstrap,
            "CALLSTREAM_S3_ENDPOINT": self.s3_endpoint,
            "CALLSTREAM_S3_BUCKET": self.s3_bucket,
            "CALLSTREAM_S3_ACCESS_KEY_ID": self.s3_access_key,
            "CALLSTREAM_S3_SECRET_ACCESS_KEY": self.s3_secret_key,
        }
