from __future__ import annotations

import datetime as dt
import gzip
from dataclasses import dataclass, field

from aiokafka import TopicPartition

from processors.lake.buffer import LakeBuffer
from processors.lake.lines import (
    LakeLine,
    decode_lines,
    encode_line,
    hour_in_key,
    tenant_of,
    to_line,
)

TS = int(dt.datetime(2026, 11, 26, 13, 59, 59, tzinfo=dt.UTC).timestamp() * 1000)


@dataclass
class Rec:
    value: bytes | None
    key: bytes | None = b"call-1"
    headers: list[tuple[str, bytes]] = field(default_factory=lambda: [("tenant", b"9024")])
    topic: str = "callstream.cdr.raw"
    partition: int = 2
    offset: int = 40
    timestamp: int = TS


def _round_trip(record: Rec) -> LakeLine:
    [line] = decode_lines(encode_line(to_line(record)))
    assert line.key_bytes() == record.key
    assert line.value_bytes() == (record.value or b"")
    assert line.header_pairs() == record.headers
    assert (line.topic, line.partition, line.offset, line.timestamp) == (
        record.topic,
        record.partition,
        record.offset,
        record.timestamp,
    )
    return line


def test_json_values_are_kept_as_text_byte_for_byte() -> None:
    line = _round_trip(Rec(b'{"uuid": "x",  "n": 1}'))
    assert line.value == '{"uuid": "x",  "n": 1}'
    assert line.value_b64 is None


def test_other_values_keys_and_headers_survive_as_base64() -> None:
    line = _round_trip(Rec(b"\xff\x00not json", key=b"\xfe", headers=[("h", b"\x80")]))
    assert line.value is None
    assert line.key_b64 is not None
    assert line.headers_b64
    _round_trip(Rec(b"not json but text", key=None, headers=[]))
    _round_trip(Rec(None))


def test_unsafe_tenant_names_never_reach_an_object_name() -> None:
    assert tenant_of([("tenant", b"9024")]) == "9024"
    assert tenant_of([("tenant", b"../../etc")]) == "_unknown"
    assert tenant_of([]) == "_unknown"


def test_objects_are_per_topic_tenant_hour_and_partition_named_by_start_offset() -> None:
    buffer = LakeBuffer("p/")
    buffer.add(Rec(b"{}", offset=40))
    buffer.add(Rec(b"{}", offset=41, headers=[("tenant", b"7001")]))
    buffer.add(Rec(b"{}", offset=42))
    buffer.add(Rec(b"{}", offset=43, timestamp=TS + 1000))  # the next hour
    objects, offsets = buffer.take()
    assert sorted((o.key, len(o.lines)) for o in objects) == [
        ("p/lake/callstream.cdr.raw/7001/dt=2026-11-26/hour=13/2-41.ndjson.gz", 1),
        ("p/lake/callstream.cdr.raw/9024/dt=2026-11-26/hour=13/2-40.ndjson.gz", 2),
        ("p/lake/callstream.cdr.raw/9024/dt=2026-11-26/hour=14/2-43.ndjson.gz", 1),
    ]
    assert offsets == {TopicPartition("callstream.cdr.raw", 2): 44}
    assert buffer.records == 0
    assert hour_in_key(objects[0].key) is not None


def test_the_same_records_make_the_same_bytes() -> None:
    bodies = []
    for _ in range(2):
        buffer = LakeBuffer("")
        buffer.add(Rec(b'{"a":1}'))
        [item], _ = buffer.take()
        bodies.append(item.body())
    assert bodies[0] == bodies[1]
    assert decode_lines(gzip.decompress(bodies[0]))[0].value == '{"a":1}'


def test_revoked_partitions_are_forgotten() -> None:
    buffer = LakeBuffer("")
    buffer.add(Rec(b"{}", partition=1))
    buffer.add(Rec(b"{}", partition=2))
    buffer.drop([TopicPartition("callstream.cdr.raw", 1)])
    objects, offsets = buffer.take()
    assert [o.partition.partition for o in objects] == [2]
    assert list(offsets) == [TopicPartition("callstream.cdr.raw", 2)]
