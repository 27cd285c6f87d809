"""After a run: is every callback the simulator got a 2xx for in the enriched topics
exactly once, every answered call's recording archived, and every raw record in the lake?"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final

import msgspec
from aiokafka import TopicPartition

from common.config import KafkaSettings
from common.kafka import read_records
from common.records import CallStateRecord, CdrRecord, RecordingRecord
from common.topics import Header, Topics
from processors.lake.lines import decode_lines, topic_folder
from yunhu.sim.sentlog import SentEntry, read_sent_log

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

Position = tuple[str, int, int]


@dataclass(frozen=True)
class Lake:
    """Where the lake writes: the run checks every raw record reached it."""

    client: S3Client
    bucket: str
    prefix: str


_CDR: Final = msgspec.json.Decoder(CdrRecord)
_STATE: Final = msgspec.json.Decoder(CallStateRecord)


@dataclass
class Verdict:
    accepted: int = 0
    enriched: int = 0
    missing: list[SentEntry] = field(default_factory=list)
    answered: set[str] = field(default_factory=set)
    archived: set[str] = field(default_factory=set)
    twice: int = 0  # enriched records whose record_id was committed more than once
    raw: int = 0
    lake_missing: int | None = None  # None: the lake was not checked

    @property
    def recordings_missing(self) -> set[str]:
        return self.answered - self.archived

    @property
    def ok(self) -> bool:
        return (
            not self.missing
            and not self.recordings_missing
            and self.twice == 0
            and not self.lake_missing
        )

    def lines(self) -> list[str]:
        return [
            f"callbacks accepted (2xx)     {self.accepted}",
            f"enriched records             {self.enriched}",
            f"accepted but not enriched    {len(self.missing)}",
            f"answered calls               {len(self.answered)}",
            f"recordings archived          {len(self.archived & self.answered)}",
            f"answered without recording   {len(self.recordings_missing)}",
            f"enriched twice               {self.twice}",
            f"raw records                  {self.raw}",
            "raw records not in the lake  "
            + ("not checked" if self.lake_missing is None else str(self.lake_missing)),
        ]


async def verify(
    kafka: KafkaSettings,
    topics: Topics,
    starts: dict[TopicPartition, int],
    sent_log: Path,
    lake: Lake | None = None,
) -> Verdict:
    """A callback counts as enriched when an enriched record's origin is a raw record with
    the same bytes (a callback the platform sent twice is enriched once: dedupe)."""
    raw = await read_records(kafka, [topics.callstate_raw, topics.cdr_raw], starts)
    sha_at = {
        (r.topic, r.partition, r.offset): hashlib.sha256(r.value or b"").hexdigest() for r in raw
    }
    kinds = {topics.callstate_raw: "callstate", topics.cdr_raw: "cdr"}
    enriched = await read_records(kafka, [topics.callstate, topics.cdr], starts)
    verdict = Verdict(enriched=len(enriched), raw=len(raw))
    ids = Counter(dict(r.headers).get(Header.RECORD_ID) for r in enriched)
    verdict.twice = sum(count - 1 for count in ids.values() if count > 1)
    if lake is not None:
        archived = await asyncio.to_thread(
            _lake_positions, lake, [topics.callstate_raw, topics.cdr_raw]
        )
        verdict.lake_missing = len(set(sha_at) - archived)
    delivered: set[tuple[str, str]] = set()
    for record in enriched:
        item: CdrRecord | CallStateRecord = (
            _CDR.decode(record.value) if record.topic == topics.cdr else _STATE.decode(record.value)
        )
        origin = (item.origin.topic, item.origin.partition, item.origin.offset)
        if origin not in sha_at:  # raw from before this run, enriched during it
            continue
        delivered.add((kinds[item.origin.topic], sha_at[origin]))
        if isinstance(item, CdrRecord) and item.has_recording:
            verdict.answered.add(item.uuid)
    entries = read_sent_log(sent_log)
    verdict.accepted = len(entries)
    verdict.missing = [e for e in entries if (e.kind, e.sha256) not in delivered]
    for record in await read_records(kafka, [topics.recordings], starts):
        verdict.archived.add(msgspec.json.decode(record.value, type=RecordingRecord).uuid)
    return verdict


def _lake_positions(lake: Lake, topics: list[str]) -> set[Position]:
    found: set[Position] = set()
    pages = lake.client.get_paginator("list_objects_v2")
    for topic in topics:
        for page in pages.paginate(Bucket=lake.bucket, Prefix=topic_folder(lake.prefix, topic)):
            for item in page.get("Contents", []):
                body = lake.client.get_object(Bucket=lake.bucket, Key=item["Key"])["Body"].read()
                found |= {
                    (ln.topic, ln.partition, ln.offset)
                    for ln in decode_lines(gzip.decompress(body))
                }
    return found
