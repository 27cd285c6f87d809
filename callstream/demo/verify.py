"""After a run: is every callback the simulator got a 2xx for in the enriched topics, and
every answered call's recording archived?"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import msgspec
from aiokafka import TopicPartition

from common.config import KafkaSettings
from common.kafka import read_records
from common.records import CallStateRecord, CdrRecord, RecordingRecord
from common.topics import Topics
from yunhu.sim.sentlog import SentEntry, read_sent_log

_CDR: Final = msgspec.json.Decoder(CdrRecord)
_STATE: Final = msgspec.json.Decoder(CallStateRecord)


@dataclass
class Verdict:
    accepted: int = 0
    enriched: int = 0
    missing: list[SentEntry] = field(default_factory=list)
    answered: set[str] = field(default_factory=set)
    archived: set[str] = field(default_factory=set)

    @property
    def recordings_missing(self) -> set[str]:
        return self.answered - self.archived

    @property
    def ok(self) -> bool:
        return not self.missing and not self.recordings_missing

    def lines(self) -> list[str]:
        return [
            f"callbacks accepted (2xx)     {self.accepted}",
            f"enriched records             {self.enriched}",
            f"accepted but not enriched    {len(self.missing)}",
            f"answered calls               {len(self.answered)}",
            f"recordings archived          {len(self.archived & self.answered)}",
            f"answered without recording   {len(self.recordings_missing)}",
        ]


async def verify(
    kafka: KafkaSettings, topics: Topics, starts: dict[TopicPartition, int], sent_log: Path
) -> Verdict:
    """A callback counts as enriched when an enriched record's origin is a raw record with
    the same bytes (a callback the platform sent twice is enriched once: dedupe)."""
    raw = await read_records(kafka, [topics.callstate_raw, topics.cdr_raw], starts)
    sha_at = {
        (r.topic, r.partition, r.offset): hashlib.sha256(r.value or b"").hexdigest() for r in raw
    }
    kinds = {topics.callstate_raw: "callstate", topics.cdr_raw: "cdr"}
    enriched = await read_records(kafka, [topics.callstate, topics.cdr], starts)
    verdict = Verdict(enriched=len(enriched))
    delivered: set[tuple[str, str]] = set()
    for record in enriched:
        item: CdrRecord | CallStateRecord = (
            _CDR.decode(record.value) if record.topic == topics.cdr else _STATE.decode(record.value)
        )
        origin = (item.origin.topic, item.origin.partition, item.origin.offset)
        if origin in sha_at:
            delivered.add((kinds[item.origin.topic], sha_at[origin]))
        if isinstance(item, CdrRecord) and item.has_recording:
            verdict.answered.add(item.uuid)
    entries = read_sent_log(sent_log)
    verdict.accepted = len(entries)
    verdict.missing = [e for e in entries if (e.kind, e.sha256) not in delivered]
    for record in await read_records(kafka, [topics.recordings], starts):
        verdict.archived.add(msgspec.json.decode(record.value, type=RecordingRecord).uuid)
    return verdict
