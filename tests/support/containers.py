"""Kafka and S3 for the integration tests as testcontainers, from the images built here
(deploy/kafka, deploy/s3; see callstream.dev.image.services), so no registry is needed.

Containers use the host's network: a dockerd started without a bridge (as
`callstream.dev.image.engine` starts one) cannot map ports. Their ports are fixed, apart
from the local stack's, and checked free first. Ryuk is not used (its image would have
to be pulled); the containers are removed when the session ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from testcontainers.core.config import testcontainers_config
from testcontainers.core.container import DockerContainer

from callstream.dev.image.engine import docker_engine
from callstream.dev.image.services import kafka_image, s3_image
from callstream.dev.stack import StackSettings, kafka, s3
from callstream.dev.stack.process import require_free_ports
from callstream.dev.stack.settings import HOST

# Below the ephemeral range (32768-60999), where a client's port could be in the way.
SETTINGS = StackSettings(
    kafka_port=19192, controller_port=19193, s3_port=18433, seaweed_port_base=21000
)
READY_TIMEOUT = 120.0


@contextlib.contextmanager
def kafka_and_s3(settings: StackSettings = SETTINGS) -> Iterator[StackSettings]:
    """Both running on the settings' ports, and answering, for as long as the context lasts."""
    testcontainers_config.ryuk_disabled = True
    require_free_ports(
        kafka.ports(settings) | s3.ports(settings), "the containers backend's; stop what holds it"
    )
    with docker_engine(settings.root / "docker") as env, _environ(env):
        broker = _kafka(kafka_image(env, settings), settings)
        storage = _s3(s3_image(env, settings), settings)
        with broker, storage:
            bootstrap = settings.kafka_bootstrap
            _wait("Kafka", broker, lambda: asyncio.run(kafka.answers_metadata(bootstrap)))
            _wait("S3", storage, lambda: s3.answers_bucket_call(settings))
            yield settings


def _kafka(image: str, settings: StackSettings) -> DockerContainer:
    return (
        DockerContainer(image)
        .with_kwargs(network_mode="host")
        .with_env("KAFKA_HOST", HOST)
        .with_env("KAFKA_PORT", str(settings.kafka_port))
        .with_env("KAFKA_CONTROLLER_PORT", str(settings.controller_port))
        .with_env("KAFKA_HEAP", settings.kafka_heap)
    )


def _s3(image: str, settings: StackSettings) -> DockerContainer:
    return (
        DockerContainer(image)
        .with_kwargs(network_mode="host")
        .with_env("AWS_ACCESS_KEY_ID", settings.s3_access_key)
        .with_env("AWS_SECRET_ACCESS_KEY", settings.s3_secret_key)
        .with_command(s3.mini_args(settings, Path("/data")))
    )


def _wait(what: str, container: DockerContainer, answers: Callable[[], bool]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if answers():
            return
        wrapped = container.get_wrapped_container()
        wrapped.reload()
        if wrapped.status != "running":
            break
        time.sleep(1)
    out, err = container.get_logs()
    tail = (out + err).decode(errors="replace")[-3000:]
    raise RuntimeError(f"{what} container did not answer within {READY_TIMEOUT:.0f} s:\n{tail}")


@contextlib.contextmanager
def _environ(env: dict[str, str]) -> Iterator[None]:
    """The engine's address for testcontainers (and any process a test starts)."""
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
