"""Lake lines grouped by object (topic, tenant, hour, partition) until the next flush."""

from __future__ import annotations

import gzip
from dataclasses import dataclass, field
from typing import Any

from aiokafka import TopicPartition

from processors.lake.lines import encode_line, hour_of, object_key, tenant_of, to_line


@dataclass
class LakeObject:
    key: str
    partition: TopicPartition
    start_offset: int
    lines: list[bytes] = field(default_factory=list)

    def body(self) -> bytes:
        # mtime=0: the same lines always make the same bytes, so a re-run overwrites alike.
        return gzip.compress(b"".join(self.lines), compresslevel=6, mtime=0)


class LakeBuffer:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.objects: dict[tuple[str, str, int, int], LakeObject] = {}
        self.next_offsets: dict[TopicPartition, int] = {}
        self.records = 0

    def add(self, record: Any) -> None:
        tenant = tenant_of(record.headers)
        hour = hour_of(record.timestamp)
        slot = (record.topic, tenant, int(hour.timestamp()), record.partition)
        found = self.objects.get(slot)
        if found is None:
            key = object_key(
                self.prefix, record.topic, tenant, hour, record.partition, record.offset
            )
            tp = TopicPartition(record.topic, record.partition)
            found = self.objects[slot] = LakeObject(key, tp, record.offset)
        found.lines.append(encode_line(to_line(record)))
        self.next_offsets[TopicPartition(record.topic, record.partition)] = record.offset + 1
        self.records += 1

    def take(self) -> tuple[list[LakeObject], dict[TopicPartition, int]]:
        """Everything buffered, and the offsets to commit once it is written; then empty."""
        taken = (list(self.objects.values()), dict(self.next_offsets))
        self.objects.clear()
        self.next_offsets.clear()
        self.records = 0
        return taken

    def drop(self, partitions: list[TopicPartition]) -> None:
        """Forget what was read from `partitions` (revoked: their next owner re-reads it)."""
        gone = {(tp.topic, tp.partition) for tp in partitions}
        for slot in [s for s in self.objects if (s[0], s[3]) in gone]:
            self.records -= len(self.objects.pop(slot).lines)
        for tp in partitions:
            self.next_offsets.pop(tp, None)
