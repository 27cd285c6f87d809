"""`callstream topics` against the real broker."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from subprocess import CompletedProcess

import pytest

from common.kafka import kafka_admin
from common.topics import Topics
from tests.support.processes import run_callstream
from tests.support.services import Services


@pytest.fixture
async def suffix(services: Services) -> AsyncIterator[str]:
    suffix = uuid.uuid4().hex[:10]
    yield suffix
    async with kafka_admin(services.kafka) as admin:
        existing = set(await admin.list_topics())
        await admin.delete_topics([t for t in Topics.with_suffix(suffix).all() if t in existing])


def _topics(services: Services, suffix: str, *args: str, **env: str) -> CompletedProcess[str]:
    base = {
        "CALLSTREAM_KAFKA_BOOTSTRAP": services.kafka.bootstrap,
        "CALLSTREAM_TOPIC_SUFFIX": suffix,
    }
    return run_callstream("topics", *args, env={**base, **env})


async def test_create_then_verify_and_a_difference_is_reported(
    services: Services, suffix: str
) -> None:
    before = _topics(services, suffix, "verify")
    assert before.returncode == 1
    assert before.stdout.count(": missing") == len(Topics().all())

    created = _topics(services, suffix, "create", CALLSTREAM_TOPIC_PARTITIONS="4")
    assert created.returncode == 0, created.stderr
    again = _topics(services, suffix, "create", CALLSTREAM_TOPIC_PARTITIONS="4")
    assert again.returncode == 0, "creating is idempotent"

    same = _topics(services, suffix, "verify", CALLSTREAM_TOPIC_PARTITIONS="4")
    assert same.returncode == 0, same.stdout
    assert "as configured" in same.stdout

    other = _topics(
        services,
        suffix,
        "verify",
        CALLSTREAM_TOPIC_PARTITIONS="4",
        CALLSTREAM_TOPIC_RAW_RETENTION_HOURS="1",
    )
    assert other.returncode == 1
    raw = Topics.with_suffix(suffix).cdr_raw
    assert f"{raw}: retention.ms='604800000', want '3600000'" in other.stdout
