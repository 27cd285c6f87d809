"""The simulator's sent log: one NDJSON line per callback the receiver answered 2xx."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Final

import msgspec

from yunhu.sim.traffic import Callback


class SentEntry(msgspec.Struct, frozen=True, gc=False):
    kind: str
    tenant: str
    uuid: str
    sha256: str  # of the body as posted


_ENCODER: Final = msgspec.json.Encoder()
_DECODER: Final = msgspec.json.Decoder(SentEntry)


def sent_line(callback: Callback) -> bytes:
    entry = SentEntry(
        callback.kind,
        callback.companycode,
        callback.uuid,
        hashlib.sha256(callback.body).hexdigest(),
    )
    return _ENCODER.encode(entry) + b"\n"


def read_sent_log(path: Path) -> list[SentEntry]:
    """Every entry; none when the file does not exist (nothing was acknowledged)."""
    if not path.exists():
        return []
    return [_DECODER.decode(line) for line in path.read_bytes().splitlines() if line]
