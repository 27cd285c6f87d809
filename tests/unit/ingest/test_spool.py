from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from ingest.spool import Spool, SpoolFullError, SpoolRecord, frame


def _record(i: int) -> SpoolRecord:
    return SpoolRecord(
        "raw", f"k{i}".encode(), f"value-{i}".encode(), [("n", str(i).encode())], time.time()
    )


async def _drain_all(spool: Spool) -> list[SpoolRecord]:
    got: list[SpoolRecord] = []

    async def publish(records: list[SpoolRecord]) -> None:
        got.extend(records)

    await spool.drain(publish, batch=7)
    return got


async def test_appended_records_drain_in_order_and_the_files_go(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20, segment_bytes=512)
    spool.open()
    for i in range(50):
        await spool.append(_record(i))
    assert spool.records == 50
    assert len(list(tmp_path.glob("*.seg"))) > 2, "small segments rotate"
    got = await _drain_all(spool)
    assert [r.value for r in got] == [f"value-{i}".encode() for i in range(50)]
    assert (spool.records, spool.stored_bytes) == (0, 0)
    await spool.close()
    assert list(tmp_path.glob("*.seg")) == []


async def test_a_new_process_drains_what_the_last_one_left(tmp_path: Path) -> None:
    first = Spool(tmp_path, max_bytes=1 << 20)
    first.open()
    for i in range(10):
        await first.append(_record(i))
    # no close(): the process died here
    second = Spool(tmp_path, max_bytes=1 << 20)
    second.open()
    assert second.records == 10
    # The oldest record's age survives the restart: read back from its segment.
    first_at = _record(0).spooled_at
    assert second.oldest_age(now=first_at + 42) == pytest.approx(42, abs=1)
    got = await _drain_all(second)
    assert [r.key for r in got] == [f"k{i}".encode() for i in range(10)]


async def test_a_torn_last_record_is_dropped_and_the_rest_kept(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20)
    spool.open()
    for i in range(3):
        await spool.append(_record(i))
    segment = next(tmp_path.glob("*.seg"))
    with segment.open("ab") as f:
        f.write(frame(_record(3))[:-5])  # a crash mid-write
    again = Spool(tmp_path, max_bytes=1 << 20)
    again.open()
    assert again.records == 3
    assert [r.value for r in await _drain_all(again)] == [b"value-0", b"value-1", b"value-2"]


async def test_the_size_bound_refuses_more(tmp_path: Path) -> None:
    one = len(frame(_record(0)))
    spool = Spool(tmp_path, max_bytes=one * 3)
    spool.open()
    for i in range(3):
        await spool.append(_record(i))
    with pytest.raises(SpoolFullError):
        await spool.append(_record(3))
    assert not spool.has_room(one)
    await _drain_all(spool)
    await spool.append(_record(4))  # room again once drained


async def test_a_failed_publish_keeps_the_records_for_next_time(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20)
    spool.open()
    for i in range(20):
        await spool.append(_record(i))
    published: list[bytes] = []

    async def flaky(records: list[SpoolRecord]) -> None:
        if len(published) >= 10:
            raise TimeoutError("kafka down")
        published.extend(r.value for r in records)

    with pytest.raises(TimeoutError):
        await spool.drain(flaky, batch=5)
    assert spool.records == 10
    rest = await _drain_all(spool)
    assert published + [r.value for r in rest] == [f"value-{i}".encode() for i in range(20)]


async def test_concurrent_appends_share_fsyncs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20)
    spool.open()
    writes: list[int] = []
    original = spool._write

    def counting(blob: bytes) -> None:
        writes.append(len(blob))
        original(blob)

    monkeypatch.setattr(spool, "_write", counting)
    await asyncio.gather(*(spool.append(_record(i)) for i in range(200)))
    assert spool.records == 200
    assert len(writes) < 20, f"{len(writes)} fsyncs for 200 appends"
