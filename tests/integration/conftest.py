"""Real Kafka and S3 for the integration tests, with per-test topics and bucket prefixes."""

from __future__ import annotations

import asyncio
import resource
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import TYPE_CHECKING

import pytest

from common.kafka import TopicSpec, ensure_topics, kafka_admin
from common.s3 import ensure_bucket, make_client
from common.topics import Topics
from devkit.topics import delete_topics, new_topics
from tests.support.private_kafka import PrivateKafka
from tests.support.private_s3 import PrivateS3
from tests.support.services import Services, real_services

if TYPE_CHECKING:
    from pathlib import Path

    from mypy_boto3_s3 import S3Client

TopicFactory = Callable[..., Awaitable[str]]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration/" in item.nodeid:
            item.add_marker(pytest.mark.integration)


_USED: list[Services] = []


@pytest.fixture(scope="session")
def services() -> Iterator[Services]:
    with real_services() as found:
        _USED.append(found)
        yield found


@pytest.fixture
async def broker(tmp_path: Path) -> AsyncIterator[PrivateKafka]:
    """A started Kafka broker of this test's own, which it may kill and restart; stopped
    when the test is done."""
    private = PrivateKafka.create(tmp_path / "kafka")
    await asyncio.to_thread(private.start)
    try:
        yield private
    finally:
        await asyncio.to_thread(private.stop)


@pytest.fixture
async def private_s3(tmp_path: Path) -> AsyncIterator[PrivateS3]:
    """A started S3 server of this test's own, its bucket made, which the test may kill,
    freeze and restart; thawed and stopped when the test is done."""
    private = PrivateS3.create(tmp_path / "s3")
    await asyncio.to_thread(private.start)
    ensure_bucket(make_client(private.s3), private.s3.bucket)
    try:
        yield private
    finally:
        await asyncio.to_thread(private.stop)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Which Kafka and S3 the integration tests ran against, in the run's own output."""
    for used in _USED:
        terminalreporter.write_line(
            f"integration services: {used.source} "
            f"(Kafka {used.kafka.bootstrap}, S3 {used.s3.endpoint})"
        )


@pytest.fixture
async def new_topic(services: Services) -> AsyncIterator[TopicFactory]:
    """Creates `name.<uuid>` topics for this test alone and deletes them afterwards."""
    created: list[str] = []
    async with kafka_admin(services.kafka) as admin:

        async def factory(name: str = "test", partitions: int = 3) -> str:
            topic = f"{name}.{uuid.uuid4().hex[:12]}"
            await ensure_topics(admin, [TopicSpec(topic, partitions)])
            created.append(topic)
            return topic

        try:
            yield factory
        finally:
            if created:
                await admin.delete_topics(created)


TopicSetFactory = Callable[[], Awaitable[tuple[str, Topics]]]


@pytest.fixture
async def topic_set(services: Services) -> AsyncIterator[TopicSetFactory]:
    """Every callstream topic under a suffix of this test's own; deleted afterwards, so
    a long-lived development broker does not pile up test topics."""
    created: list[Topics] = []

    async def factory() -> tuple[str, Topics]:
        suffix, topics = await new_topics(services.kafka)
        created.append(topics)
        return suffix, topics

    yield factory
    if created:
        await delete_topics(services.kafka, [name for t in created for name in t.all()])


@pytest.fixture(scope="session")
def s3_client(services: Services) -> S3Client:
    client = make_client(services.s3)
    ensure_bucket(client, services.s3.bucket)
    return client


@pytest.fixture
def s3_prefix(services: Services, s3_client: S3Client) -> Iterator[str]:
    """A key prefix of this test's own; whatever the test leaves under it is deleted."""
    prefix = f"tests/{uuid.uuid4().hex}/"
    yield prefix
    listed = s3_client.list_objects_v2(Bucket=services.s3.bucket, Prefix=prefix)
    for item in listed.get("Contents", []):
        s3_client.delete_object(Bucket=services.s3.bucket, Key=item["Key"])


@pytest.fixture
def many_files() -> None:
    """This process may hold a flood's sockets."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < 4096:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(4096, hard), hard))
