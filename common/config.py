"""Connection settings for Kafka and S3, read once from `CALLSTREAM_*` variables by an entry point.

Secrets (SASL password, S3 secret key) never appear in reprs or logs.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from yunhu.tenants import Tenant, TenantsError, load_tenants

KAFKA_PROTOCOLS = frozenset({"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"})
SASL_MECHANISMS = frozenset({"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"})


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


@dataclass(frozen=True, slots=True)
class KafkaSettings:
    bootstrap: str
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)
    ssl_cafile: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> KafkaSettings:
        bootstrap = env.get("CALLSTREAM_KAFKA_BOOTSTRAP", "")
        if not bootstrap:
            raise ConfigError("CALLSTREAM_KAFKA_BOOTSTRAP is not set (host:port[,host:port])")
        protocol = env.get("CALLSTREAM_KAFKA_SECURITY_PROTOCOL", "PLAINTEXT").upper()
        if protocol not in KAFKA_PROTOCOLS:
            raise ConfigError(
                f"CALLSTREAM_KAFKA_SECURITY_PROTOCOL must be one of {sorted(KAFKA_PROTOCOLS)}"
            )
        mechanism = env.get("CALLSTREAM_KAFKA_SASL_MECHANISM") or None
        if mechanism is not None and mechanism.upper() not in SASL_MECHANISMS:
            raise ConfigError(
                f"CALLSTREAM_KAFKA_SASL_MECHANISM must be one of {sorted(SASL_MECHANISMS)}"
            )
        return cls(
            bootstrap=bootstrap,
            security_protocol=protocol,
            sasl_mechanism=mechanism.upper() if mechanism else None,
            sasl_username=env.get("CALLSTREAM_KAFKA_SASL_USERNAME") or None,
            sasl_password=env.get("CALLSTREAM_KAFKA_SASL_PASSWORD") or None,
            ssl_cafile=env.get("CALLSTREAM_KAFKA_SSL_CAFILE") or None,
        )

    def rdkafka_settings(self) -> dict[str, Any]:
        """The connection and security settings of every librdkafka client."""
        config: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap,
            "security.protocol": self.security_protocol,
            "socket.keepalive.enable": True,
        }
        if self.sasl_mechanism:
            config["sasl.mechanism"] = self.sasl_mechanism
            config["sasl.username"] = self.sasl_username or ""
            config["sasl.password"] = self.sasl_password or ""
        if self.ssl_cafile:
            config["ssl.ca.location"] = self.ssl_cafile
        return config

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments every aiokafka client takes."""
        kwargs: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap,
            "security_protocol": self.security_protocol,
        }
        if self.security_protocol in {"SSL", "SASL_SSL"}:
            kwargs["ssl_context"] = ssl.create_default_context(cafile=self.ssl_cafile)
        if self.security_protocol.startswith("SASL"):
            kwargs["sasl_mechanism"] = self.sasl_mechanism or "PLAIN"
            kwargs["sasl_plain_username"] = self.sasl_username
            kwargs["sasl_plain_password"] = self.sasl_password
        return kwargs


@dataclass(frozen=True, slots=True)
class S3Settings:
    endpoint: str | None
    bucket: str
    region: str = "us-east-1"
    access_key_id: str | None = None
    secret_access_key: str | None = field(default=None, repr=False)
    prefix: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> S3Settings:
        bucket = env.get("CALLSTREAM_S3_BUCKET", "")
        if not bucket:
            raise ConfigError("CALLSTREAM_S3_BUCKET is not set")
        return cls(
            endpoint=env.get("CALLSTREAM_S3_ENDPOINT") or None,
            bucket=bucket,
            region=env.get("CALLSTREAM_S3_REGION") or "us-east-1",
            access_key_id=env.get("CALLSTREAM_S3_ACCESS_KEY_ID") or None,
            secret_access_key=env.get("CALLSTREAM_S3_SECRET_ACCESS_KEY") or None,
            prefix=env.get("CALLSTREAM_S3_PREFIX", ""),
        )


def tenants_setting(path: Path | None, env: Mapping[str, str]) -> dict[str, Tenant]:
    """The tenants file that `--tenants` (or else `CALLSTREAM_TENANTS`) names, loaded."""
    chosen = path or env.get("CALLSTREAM_TENANTS")
    if not chosen:
        raise ConfigError("give --tenants FILE or set CALLSTREAM_TENANTS")
    try:
        return load_tenants(Path(chosen))
    except TenantsError as err:
        raise ConfigError(str(err)) from err
