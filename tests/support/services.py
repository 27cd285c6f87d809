"""Where the integration tests get a real Kafka broker and a real S3 server.

In order: `CALLSTREAM_TEST_KAFKA` / `CALLSTREAM_TEST_S3` when set; testcontainers when
`CALLSTREAM_TEST_BACKEND=containers`; otherwise the local stack (`callstream stack`),
started here and stopped at the end if it was not already running. A Docker engine that
merely answers does not choose containers: without registry access their images cannot
be pulled. A broker that cannot be had is an error.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from callstream.dev.stack import Stack, StackSettings
from common.config import KafkaSettings, S3Settings

TEST_BUCKET = "callstream-test"
# testcontainers' Kafka module knows how to run this image in KRaft mode.
KAFKA_IMAGE = "confluentinc/cp-kafka:7.9.0"
SEAWEEDFS_IMAGE = "chrislusf/seaweedfs:4.00"


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


def _docker_answers() -> bool:
    try:
        import docker  # noqa: PLC0415 - only where testcontainers is wanted

        docker.from_env(timeout=3).ping()
    except Exception:  # noqa: BLE001 - any failure means "no engine here"
        return False
    return True


@contextlib.contextmanager
def _from_containers() -> Iterator[Services]:
    from testcontainers.community.kafka import KafkaContainer  # noqa: PLC0415
    from testcontainers.core.container import DockerContainer  # noqa: PLC0415
    from testcontainers.core.waiting_utils import wait_for_logs  # noqa: PLC0415

    key, secret = "callstream", "callstream-local-secret"
    s3 = (
        DockerContainer(SEAWEEDFS_IMAGE)
        .with_command("mini -dir=/data")
        .with_env("AWS_ACCESS_KEY_ID", key)
        .with_env("AWS_SECRET_ACCESS_KEY", secret)
        .with_exposed_ports(8333)
    )
    with KafkaContainer(KAFKA_IMAGE).with_kraft() as kafka, s3:
        wait_for_logs(s3, "S3 Endpoint", timeout=60)
        endpoint = f"http://{s3.get_container_host_ip()}:{s3.get_exposed_port(8333)}"
        yield Services(
            KafkaSettings(bootstrap=kafka.get_bootstrap_server()),
            S3Settings(endpoint, TEST_BUCKET, access_key_id=key, secret_access_key=secret),
            "testcontainers",
        )


@contextlib.contextmanager
def _from_local_stack(env: Mapping[str, str]) -> Iterator[Services]:
    settings = StackSettings.from_env(env)
    stack = Stack(settings)
    started = stack.up()  # raises StackError, naming what is missing, when it cannot
    s3 = settings.s3_settings()
    try:
        yield Services(
            settings.kafka_settings(),
            S3Settings(s3.endpoint, TEST_BUCKET, s3.region, s3.access_key_id, s3.secret_access_key),
            "local stack",
        )
    finally:
        if started:
            stack.down()


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
        if not _docker_answers():
            raise RuntimeError("CALLSTREAM_TEST_BACKEND=containers, but no Docker engine answers")
        with _from_containers() as services:
            yield services
    else:
        with _from_local_stack(os.environ) as services:
            yield services
