"""An on-disk spool: where accepted callbacks wait while Kafka cannot acknowledge them.

Records are appended to segment files as `[length u32][crc32 u32][msgpack]`, many
appends share one write and one fsync (group commit), and `append` returns only after
that fsync. `drain` hands the records, oldest first, to a publisher and deletes each
segment once all of it is published. A restarted process drains what a crashed one
left. A torn record at the end of a segment (a crash mid-write) was never acknowledged
and is dropped; a segment is never appended to again after a restart.
"""

from __future__ import annotations

import asyncio
import logging
import os
import struct
import time
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final

import msgspec

log = logging.getLogger(__name__)

_FRAME: Final = struct.Struct("<II")
_ENCODER: Final = msgspec.msgpack.Encoder()
SUFFIX: Final = ".seg"


class SpoolRecord(msgspec.Struct, frozen=True, array_like=True, gc=False):
    topic: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]
    spooled_at: float


_DECODER: Final = msgspec.msgpack.Decoder(SpoolRecord)


class SpoolFullError(Exception):
    """The spool has reached its size bound; the caller should answer 503 + Retry-After."""

    retriable = True


@dataclass
class _Segment:
    seq: int
    path: Path
    size: int = 0
    records: int = 0
    first_at: float | None = None
    drained: int = 0  # records of this segment already published by this process


def frame(record: SpoolRecord) -> bytes:
    payload = _ENCODER.encode(record)
    return _FRAME.pack(len(payload), zlib.crc32(payload)) + payload


def read_segment(path: Path) -> list[SpoolRecord]:
    """Every intact record of a segment, stopping at the first torn or corrupt one."""
    data = path.read_bytes()
    records: list[SpoolRecord] = []
    pos = 0
    while pos + _FRAME.size <= len(data):
        length, crc = _FRAME.unpack_from(data, pos)
        payload = data[pos + _FRAME.size : pos + _FRAME.size + length]
        if len(payload) < length or zlib.crc32(payload) != crc:
            log.warning("spool segment %s: torn record at byte %d dropped", path.name, pos)
            break
        try:
            records.append(_DECODER.decode(payload))
        except msgspec.DecodeError:
            log.warning("spool segment %s: undecodable record at byte %d", path.name, pos)
            break
        pos += _FRAME.size + length
    return records


class Spool:
    def __init__(self, directory: Path, *, max_bytes: int, segment_bytes: int = 4 << 20) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self._segments: list[_Segment] = []
        self._active: IO[bytes] | None = None
        self._pending: list[tuple[bytes, asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._write_lock = asyncio.Lock()
        self._bytes = 0
        self._records = 0
        self.appended = asyncio.Event()

    # -- state ----------------------------------------------------------------------

    @property
    def records(self) -> int:
        return self._records

    @property
    def stored_bytes(self) -> int:
        """Bytes on disk plus bytes being appended."""
        return self._bytes

    def oldest_age(self, now: float | None = None) -> float:
        for segment in self._segments:
            if segment.first_at is not None and segment.records > segment.drained:
                return max(0.0, (now or time.time()) - segment.first_at)
        return 0.0

    def has_room(self, size: int = 0) -> bool:
        return self._bytes + size <= self.max_bytes

    # -- lifecycle ------------------------------------------------------------------

    def open(self) -> None:
        """Adopt what an earlier process left, and start a fresh segment for new records."""
        self.directory.mkdir(parents=True, exist_ok=True)
        for path in sorted(self.directory.glob(f"*{SUFFIX}")):
            records = read_segment(path)
            if not records:
                path.unlink()
                continue
            size = path.stat().st_size
            self._segments.append(
                _Segment(int(path.stem), path, size, len(records), records[0].spooled_at)
            )
            self._bytes += size
            self._records += len(records)
        if self._records:
            log.info("spool: %d records left by an earlier run", self._records)
        self._new_segment()

    async def close(self) -> None:
        if self._flusher is not None:
            await self._flusher
        async with self._write_lock:
            if self._active is not None:
                self._active.close()
                self._active = None
            if self._segments and self._segments[-1].records == 0:
                self._segments.pop().path.unlink(missing_ok=True)

    def _new_segment(self) -> None:
        seq = self._segments[-1].seq + 1 if self._segments else 1
        path = self.directory / f"{seq:016d}{SUFFIX}"
        self._active = path.open("ab")
        self._segments.append(_Segment(seq, path))
        _fsync_dir(self.directory)

    # -- writing --------------------------------------------------------------------

    async def append(self, record: SpoolRecord) -> None:
        """Returns once the record is on disk (fsynced); raises SpoolFullError at the bound."""
        data = frame(record)
        if not self.has_room(len(data)):
            raise SpoolFullError(f"spool full ({self._bytes} of {self.max_bytes} bytes)")
        self._bytes += len(data)  # reserved now, so concurrent appends respect the bound
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((data, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_loop())
        await future

    async def _flush_loop(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            blob = b"".join(data for data, _ in batch)
            try:
                async with self._write_lock:
                    await asyncio.to_thread(self._write, blob)
                    segment = self._segments[-1]
                    if segment.first_at is None:
                        segment.first_at = time.time()
                    segment.size += len(blob)
                    segment.records += len(batch)
                    self._records += len(batch)
                    if segment.size >= self.segment_bytes:
                        await self._rotate_locked()
            except OSError as err:
                self._bytes -= len(blob)
                for _, future in batch:
                    if not future.done():
                        future.set_exception(err)
                continue
            for _, future in batch:
                if not future.done():
                    future.set_result(None)
            self.appended.set()

    def _write(self, blob: bytes) -> None:
        if self._active is None:
            raise OSError("spool is not open")
        self._active.write(blob)
        self._active.flush()
        os.fsync(self._active.fileno())

    async def _rotate_locked(self) -> None:
        if self._active is not None:
            await asyncio.to_thread(self._active.close)
        self._new_segment()

    # -- draining -------------------------------------------------------------------

    async def drain(
        self, publish: Callable[[list[SpoolRecord]], Awaitable[None]], batch: int = 500
    ) -> int:
        """Publish everything spooled before the call, oldest first; returns how many were
        published. Records appended meanwhile wait for the next call, so a call ends even
        while appends go on.

        `publish` must return only when the batch is durable elsewhere. When it raises, the
        records from that batch on stay in the spool for the next call."""
        done = 0
        async with self._write_lock:
            if self._segments and self._segments[-1].records:
                await self._rotate_locked()
            sealed = self._segments[:-1]
        for segment in sealed:
            records = await asyncio.to_thread(read_segment, segment.path)
            for start in range(segment.drained, len(records), batch):
                chunk = records[start : start + batch]
                await publish(chunk)
                segment.drained = start + len(chunk)
                self._records -= len(chunk)
                done += len(chunk)
            self._records -= segment.records - len(records)  # torn tail, if any
            await asyncio.to_thread(segment.path.unlink)
            self._segments.remove(segment)
            self._bytes -= segment.size
        return done


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
