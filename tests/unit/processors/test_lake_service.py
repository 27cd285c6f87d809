"""The lake's flush with a fake consumer and a fake S3 put: objects are written before
the offsets after them are committed; what was not written, or not committed, is read
again; partitions given up are flushed first, or forgotten if that fails; a stop
flushes what is buffered, and ends even with Kafka gone or S3 frozen."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import pytest
from aiokafka import TopicPartition

from common.kafka import CommitTimedOut, commit_within
from processors.lake import service
from processors.lake.service import Lake, LakeSettings
from tests.support.running import running
from tests.unit.processors.test_lake_lines import Rec

RAW = "callstream.cdr.raw"
TP = TopicPartition(RAW, 2)


@dataclass
class FakeConsumer:
    journal: list[str]
    batches: deque[dict[TopicPartition, list[Any]]] = field(default_factory=deque)
    seeks: list[tuple[TopicPartition, int]] = field(default_factory=list)
    away: bool = False  # Kafka gone: a commit waits for a coordinator for ever, as aiokafka's
    broken: Exception | None = None  # what reading raises

    async def getmany(self, timeout_ms: int, max_records: int) -> dict[TopicPartition, list[Any]]:
        if self.broken is not None:
            raise self.broken
        if self.batches:
            return self.batches.popleft()
        await asyncio.sleep(0.01)
        return {}

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        if self.away:
            await asyncio.Event().wait()
        self.journal.append(f"commit {offsets[TP]}")

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks.append((tp, offset))

    def subscription(self) -> set[str]:
        return {RAW}

    def partitions_for_topic(self, topic: str) -> set[int]:
        return set()


@dataclass
class FakeS3:
    journal: list[str]
    down: bool = False
    objects: dict[str, bytes] = field(default_factory=dict)
    thawed: threading.Event = field(default_factory=threading.Event)
    frozen: bool = False  # a put blocks until `thawed`, as with a server that answers nothing

    def put(self, key: str, body: bytes) -> None:
        if self.frozen:
            self.journal.append("put waiting")
            self.thawed.wait()
        if self.down:
            raise OSError("S3 is away")
        self.objects[key] = body
        self.journal.append(f"put {key.rsplit('/', 1)[-1]}")


def lake(**settings: Any) -> tuple[Lake, FakeConsumer, FakeS3]:
    journal: list[str] = []
    consumer, s3 = FakeConsumer(journal), FakeS3(journal)
    made = Lake(consumer, s3.put, LakeSettings(**settings))
    return made, consumer, s3


def records(*offsets: int) -> list[Rec]:
    return [Rec(b'{"uuid":"u"}', offset=o) for o in offsets]


def add(made: Lake, *offsets: int) -> None:
    for record in records(*offsets):
        made.buffer.add(record)


async def test_objects_are_written_before_the_offsets_after_them_are_committed() -> None:
    made, _, s3 = lake()
    add(made, 40, 41, 42)
    await made.flush()
    assert s3.journal == ["put 2-40.ndjson.gz", "commit 43"]
    assert made.buffer.records == 0
    assert made.metrics.registry.get_sample_value("callstream_lake_records_total") == 3


async def test_what_was_not_written_is_read_again_and_nothing_committed() -> None:
    made, consumer, s3 = lake()
    s3.down = True
    add(made, 40, 41)
    with pytest.raises(OSError, match="S3 is away"):
        await made.flush()
    assert s3.journal == []
    assert consumer.seeks == [(TP, 40)]


@pytest.fixture
def commits_given_up_soon(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service, "commit_within", partial(commit_within, seconds=0.05))


@pytest.mark.usefixtures("commits_given_up_soon")
async def test_what_was_written_but_not_committed_is_read_again() -> None:
    made, consumer, s3 = lake()
    consumer.away = True
    add(made, 40, 41)
    with pytest.raises(CommitTimedOut):
        await made.flush()
    assert s3.journal == ["put 2-40.ndjson.gz"]
    assert consumer.seeks == [(TP, 40)], "written again (the same name), then committed"


async def test_partitions_given_up_are_flushed_first_or_forgotten() -> None:
    made, _, s3 = lake()
    add(made, 40)
    await made.listener.on_partitions_revoked([TP])
    assert s3.journal[-1] == "commit 41"
    s3.down = True
    add(made, 41)
    await made.listener.on_partitions_revoked([TP])
    assert made.buffer.records == 0, "the next owner reads them again"
    assert s3.journal[-1] == "commit 41"


async def test_the_run_flushes_on_count_and_on_stop() -> None:
    made, consumer, s3 = lake(flush_records=2, lag_every=60.0)
    consumer.batches.extend([{TP: records(40, 41)}, {TP: records(42)}])
    async with running(made.run):
        while len(s3.journal) < 2:
            await asyncio.sleep(0.01)
        assert s3.journal == ["put 2-40.ndjson.gz", "commit 42"]
        while consumer.batches:
            await asyncio.sleep(0.01)
    assert s3.journal[2:] == ["put 2-42.ndjson.gz", "commit 43"]


@pytest.mark.usefixtures("commits_given_up_soon")
async def test_a_stop_with_kafka_gone_ends_with_the_writes_not_committed() -> None:
    made, consumer, s3 = lake(flush_records=10, flush_seconds=60.0, lag_every=60.0)
    consumer.away = True
    consumer.batches.append({TP: records(40, 41)})
    stop = asyncio.Event()
    run = asyncio.create_task(made.run(stop))
    while consumer.batches:
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(run, 5)
    assert s3.journal == ["put 2-40.ndjson.gz"], "written, not committed: the next owner re-reads"


async def test_a_stop_gives_up_a_flush_that_s3_holds_past_the_stop_budget() -> None:
    made, consumer, s3 = lake(flush_records=2, lag_every=60.0, stop_flush_seconds=0.3)
    s3.frozen = True
    consumer.batches.append({TP: records(40, 41)})
    stop = asyncio.Event()
    run = asyncio.create_task(made.run(stop))
    try:
        while "put waiting" not in s3.journal:
            await asyncio.sleep(0.01)
        stopped = time.monotonic()
        stop.set()
        await asyncio.wait_for(run, 5)
        took = time.monotonic() - stopped
    finally:
        s3.down = True  # the put held in its thread fails when it is let go
        s3.thawed.set()
    assert 0.3 <= took < 1.5, took
    assert s3.journal == ["put waiting"], "nothing committed: the next owner re-reads"


async def test_an_error_reading_ends_the_run_with_it() -> None:
    made, consumer, _ = lake(lag_every=60.0)
    consumer.broken = RuntimeError("the consumer broke")
    with pytest.raises(RuntimeError, match="the consumer broke"):
        await asyncio.wait_for(made.run(asyncio.Event()), 5)
