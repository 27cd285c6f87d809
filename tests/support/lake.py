"""What the lake holds, against what the raw topics hold: positions (topic, partition,
offset), for tests that check every raw record was archived."""

from __future__ import annotations

import gzip
from typing import TYPE_CHECKING

from common.config import KafkaSettings
from common.topics import Topics
from processors.lake.lines import decode_lines
from tests.support.kafka import read_topic

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

Position = tuple[str, int, int]


def lake_positions(client: S3Client, bucket: str, prefix: str) -> set[Position]:
    found: set[Position] = set()
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            body = client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
            lines = decode_lines(gzip.decompress(body))
            found |= {(line.topic, line.partition, line.offset) for line in lines}
    return found


async def positions(kafka: KafkaSettings, names: list[str]) -> set[Position]:
    """Where every committed record of the topics `names` sits."""
    found: set[Position] = set()
    for name in names:
        found |= {(r.topic, r.partition, r.offset) for r in await read_topic(kafka, name)}
    return found


async def raw_positions(kafka: KafkaSettings, topics: Topics) -> set[Position]:
    return await positions(kafka, [topics.callstate_raw, topics.cdr_raw])
