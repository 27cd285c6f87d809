"""Where the integration tests get a real Kafka broker and a real S3 server.

In order: `CALLSTREAM_TEST_KAFKA` / `CALLSTREAM_TEST_S3` when set; testcontainers when
`CALLSTREAM_TEST_BACKEND=containers` (Kafka and S3 images built here, no registry needed:
tests/support/containers.py); otherwise the local stack (`callstream stack`), started
here and stopped at the end if it was not already running. A Docker engine that merely
answers does not choose containers. A broker that cannot be had is an error.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from callstream.dev.stack import Stack, StackSettings
from common.config import KafkaSettings, S3Settings

TEST_BUCKET = "callstream-test"


@dataclass(frozen=True, slots=True)
class Services:
    kafka: KafkaSettings
    s3: S3Settings
    source: str

    def env(self, s3_prefix: str = "") -> dict[str, str]:
        """The `CALLSTREAM_*` variables that point a callstream process at these services."""
        return {
            "CALLSTREAM_KAFKA_BOOTSTRAP": self.kafka.bootstrap,
            "CALLSTREAM_S3_ENDPOINT": self.s3.endpoint or "",
            "CALLSTREAM_S3_BUCKET": self.s3.bucket,
            "CALLSTREAM_S3_ACCESS_KEY_ID": self.s3.access_key_id or "",
            "CALLSTREAM_S3_SECRET_ACCESS_KEY": self.s3.secret_access_key or "",
            "CALLSTREAM_S3_PREFIX": s3_prefix,
        }


def _from_env(env: Mapping[str, str]) -> Services | None:
    kafka, s3 = env.get("CALLSTREAM_TEST_KAFKA"), env.get("CALLSTREAM_TEST_S3")
    if not (kafka and s3):
        return None
    return Services(
        KafkaSettings(bootstrap=kafka),
        S3Settings(
            endpoint=s3,
            bucket=env.get("CALLSTREAM_TEST_S3_BUCKET", TEST_BUCKET),
            access_key_id=env.get("CALLSTREAM_S3_ACCESS_KEY_ID"),
            secret_access_key=env.get("CALLSTREAM_S3_SECRET_ACCESS_KEY"),
        ),
        "environment",
    )


@contextlib.contextmanager
def _from_containers() -> Iterator[Services]:
    from tests.support.containers import kafka_and_s3  # noqa: PLC0415 - only when chosen

    with kafka_and_s3() as settings:
        yield _services(settings, "testcontainers")


@contextlib.contextmanager
def _from_local_stack(env: Mapping[str, str]) -> Iterator[Services]:
    settings = StackSettings.from_env(env)
    stack = Stack(settings)
    started = stack.up()  # raises StackError, naming what is missing, when it cannot
    try:
        yield _services(settings, "local stack")
    finally:
        if started:
            stack.down()


def _services(settings: StackSettings, source: str) -> Services:
    s3 = settings.s3_settings()
    return Services(
        settings.kafka_settings(),
        S3Settings(s3.endpoint, TEST_BUCKET, s3.region, s3.access_key_id, s3.secret_access_key),
        source,
    )


BACKENDS = ("stack", "containers")


def backend(env: Mapping[str, str]) -> str:
    chosen = env.get("CALLSTREAM_TEST_BACKEND", "stack") or "stack"
    if chosen not in BACKENDS:
        raise RuntimeError(f"CALLSTREAM_TEST_BACKEND must be one of {BACKENDS}, not {chosen!r}")
    return chosen


@contextlib.contextmanager
def real_services() -> Iterator[Services]:
    configured = _from_env(os.environ)
    if configured is not None:
        yield configured
    elif backend(os.environ) == "containers":
        with _from_containers() as services:
            yield services
    else:
        with _from_local_stack(os.environ) as services:
            yield services
