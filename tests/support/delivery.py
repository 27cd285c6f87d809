"""Proving delivery: every callback the simulator got a 2xx for is in the raw topics."""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from common.config import KafkaSettings
from common.topics import Topics
from tests.support.kafka import Record, read_topic
from yunhu.sim.sentlog import SentEntry, read_sent_log


@dataclass
class Delivery:
    expected: int
    missing: list[SentEntry]
    duplicates: int
    records: list[Record]


async def check_delivery(kafka: KafkaSettings, topics: Topics, sent_log: Path) -> Delivery:
    records = await read_topic(kafka, topics.callstate_raw) + await read_topic(
        kafka, topics.cdr_raw
    )
    found = Counter(
        (
            dict(r.headers)["kind"].decode(),
            r.key.decode() if r.key else "",
            hashlib.sha256(r.value or b"").hexdigest(),
        )
        for r in records
    )
    entries = read_sent_log(sent_log)
    wanted = Counter((e.kind, e.uuid, e.sha256) for e in entries)
    missing = [e for e in entries if found[(e.kind, e.uuid, e.sha256)] == 0]
    duplicates = sum(max(0, found[k] - n) for k, n in wanted.items())
    return Delivery(len(entries), missing, duplicates, records)
