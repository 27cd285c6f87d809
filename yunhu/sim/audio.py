"""Reproducible call recordings: 8 kHz mono 16-bit PCM WAV, as long as the talk time.

The audio is a function of the file name alone, so the simulator can serve any size
without storing it and a test can recompute the exact bytes.
"""

from __future__ import annotations

import hashlib
import math
import struct
from array import array
from collections.abc import Iterator
from functools import lru_cache

RATE = 8000
SAMPLE_BYTES = 2
SECOND_BYTES = RATE * SAMPLE_BYTES
HEADER_BYTES = 44


def wav_size(seconds: int) -> int:
    return HEADER_BYTES + seconds * SECOND_BYTES


def _header(seconds: int) -> bytes:
    data = seconds * SECOND_BYTES
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF", 36 + data, b"WAVE", b"fmt ", 16, 1, 1, RATE, RATE * SAMPLE_BYTES,
        SAMPLE_BYTES, 16, b"data", data,
    )  # fmt: skip


@lru_cache(maxsize=64)
def _second(filename: str) -> bytes:
    """One second of a two-tone voice-band signal whose pitches come from the file name."""
    seed = hashlib.sha256(filename.encode()).digest()
    f1 = 200 + int.from_bytes(seed[:2], "big") % 600
    f2 = 900 + int.from_bytes(seed[2:4], "big") % 1800
    samples = array(
        "h",
        (
            int(
                6000 * math.sin(2 * math.pi * f1 * t / RATE)
                + 3000 * math.sin(2 * math.pi * f2 * t / RATE)
            )
            for t in range(RATE)
        ),
    )
    if samples.itemsize != SAMPLE_BYTES:  # pragma: no cover - every CPython platform has 2
        raise RuntimeError("array('h') is not 16-bit here")
    return samples.tobytes() if struct.pack("=h", 1) == struct.pack("<h", 1) else _swap(samples)


def _swap(samples: array[int]) -> bytes:
    samples.byteswap()
    return samples.tobytes()


def iter_wav(filename: str, seconds: int, chunk_seconds: int = 4) -> Iterator[bytes]:
    """The WAV file in chunks; each second is the base second rotated, so none repeat exactly."""
    base = _second(filename)
    yield _header(seconds)
    step = 997 * SAMPLE_BYTES
    buffer = bytearray()
    for index in range(seconds):
        cut = (index * step) % SECOND_BYTES
        buffer += base[cut:]
        buffer += base[:cut]
        if (index + 1) % chunk_seconds == 0:
            yield bytes(buffer)
            buffer.clear()
    if buffer:
        yield bytes(buffer)


def wav_bytes(filename: str, seconds: int) -> bytes:
    return b"".join(iter_wav(filename, seconds))
