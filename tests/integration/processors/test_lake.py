"""The lake against the real broker and the real S3 server, and a lake replay."""

from __future__ import annotations

import asyncio
import dataclasses
import gzip
import uuid
from typing import TYPE_CHECKING

from callstream.lake_cli import s3_put
from common.config import S3Settings
from common.kafka import kafka_admin
from common.topics import Topics
from devkit.raw import publish_raw, simulated_callbacks
from processors.lake.lines import decode_lines
from processors.lake.service import LakeSettings, lake_service
from processors.replay.publish import REPLAY
from tests.integration.conftest import TopicFactory, TopicSetFactory
from tests.support.kafka import read_topic
from tests.support.processes import run_callstream
from tests.support.running import running
from tests.support.services import Services

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


async def _archive(services: Services, s3: S3Settings, topics: Topics, expected: int) -> None:
    """Runs the lake until its group has committed past `expected` records."""
    group = f"lake-{uuid.uuid4().hex}"
    settings = LakeSettings(group_id=group, prefix=s3.prefix, flush_seconds=0.5)
    async with (
        kafka_admin(services.kafka) as admin,
        lake_service(services.kafka, topics, s3_put(s3), settings) as lake,
        running(lake.run),
        asyncio.timeout(60),
    ):
        while True:
            offsets = await admin.list_consumer_group_offsets(group)
            if sum(o.offset for o in offsets.values()) >= expected:
                break
            await asyncio.sleep(0.3)


def _objects(client: S3Client, s3: S3Settings) -> dict[str, bytes]:
    listed = client.list_objects_v2(Bucket=s3.bucket, Prefix=s3.prefix)
    return {
        item["Key"]: client.get_object(Bucket=s3.bucket, Key=item["Key"])["Body"].read()
        for item in listed.get("Contents", [])
    }


async def test_the_lake_holds_every_raw_event_and_a_lake_replay_re_injects_them(
    services: Services,
    topic_set: TopicSetFactory,
    new_topic: TopicFactory,
    s3_client: S3Client,
    s3_prefix: str,
) -> None:
    _, topics = await topic_set()
    items = simulated_callbacks(15, seed=15)
    await publish_raw(services.kafka, topics, items)
    s3 = dataclasses.replace(services.s3, prefix=s3_prefix)
    await _archive(services, s3, topics, len(items))

    objects = _objects(s3_client, s3)
    raw = await read_topic(services.kafka, topics.callstate_raw) + await read_topic(
        services.kafka, topics.cdr_raw
    )
    lines = [line for body in objects.values() for line in decode_lines(gzip.decompress(body))]
    assert sorted((x.topic, x.partition, x.offset, x.value_bytes()) for x in lines) == sorted(
        (r.topic, r.partition, r.offset, r.value) for r in raw
    )
    for key, body in objects.items():
        first = decode_lines(gzip.decompress(body))[0]
        tenant = dict(first.header_pairs())["tenant"].decode()
        assert key.startswith(f"{s3_prefix}lake/{first.topic}/{tenant}/dt=")
        assert key.endswith(f"/{first.partition}-{first.offset}.ndjson.gz")

    await _archive(services, s3, topics, len(items))  # a second run, from scratch
    assert _objects(s3_client, s3) == objects, "the same objects, overwritten alike"

    target = await new_topic("lake-replay")
    env = services.env(s3_prefix)
    args = ["--topic", topics.cdr_raw, "--start=-1d", "--end", "now", "--to-topic", target]
    done = run_callstream("replay", "lake", *args, env=env)
    assert done.returncode == 0, done.stderr
    cdrs = [c for c in items if c.kind == "cdr"]
    assert f"republished {len(cdrs)}" in done.stdout
    back = await read_topic(services.kafka, target)
    assert sorted((r.key, r.value) for r in back) == sorted((c.uuid.encode(), c.body) for c in cdrs)
    assert all(dict(r.headers)[REPLAY] == b"lake" for r in back)
    one_tenant = run_callstream("replay", "lake", *args, "--tenant", "7001", "--dry-run", env=env)
    assert f"republished {sum(c.companycode == '7001' for c in cdrs)}" in one_tenant.stdout
