"""Reading a callback's body: one limit on the bytes received, whatever the transfer
coding, one on the bytes inflated, and a deadline for the whole read.

aiohttp's server runs with `auto_decompress=False`, so the bytes counted here are the
bytes on the wire (after de-chunking). Inflating here rather than in aiohttp keeps the
received bytes at hand, so a body that does not inflate can be dead-lettered as sent.
"""

from __future__ import annotations

import asyncio
import zlib
from dataclasses import dataclass
from typing import Final

from aiohttp import StreamReader, web

from ingest.settings import IngestSettings
from yunhu.callbacks import DecodeError

# zlib window bits: gzip framing, and zlib framing (HTTP's "deflate").
_WBITS: Final = {"gzip": 31, "x-gzip": 31, "deflate": 15}


@dataclass(frozen=True, slots=True)
class Refusal:
    """The body was not read: the status, what went wrong, and the setting that decided."""

    status: int
    error: str
    setting: str = ""
    limit: int = 0


@dataclass(frozen=True, slots=True)
class Unreadable:
    """The body arrived but cannot be taken as a callback: kept as a dead letter."""

    body: bytes
    problem: DecodeError


Body = bytes | Refusal | Unreadable


def too_large(settings: IngestSettings) -> Refusal:
    return Refusal(413, "body too large", "CALLSTREAM_INGEST_BODY_LIMIT", settings.body_limit)


def inflated_too_large(settings: IngestSettings) -> Refusal:
    limit = settings.decompressed_limit
    return Refusal(413, "inflated body too large", "CALLSTREAM_INGEST_DECOMPRESSED_LIMIT", limit)


def body_at_hand(
    content: StreamReader,
    content_length: int | None,
    content_encoding: str | None,
    settings: IngestSettings,
) -> Body | None:
    """The body, or why not, when that is known without waiting (a callback's body has
    usually arrived with its head); None when the rest must be read (`read_body`)."""
    if content_length is not None and content_length > settings.body_limit:
        return too_large(settings)
    if not content.is_eof():
        return None
    raw = content.read_nowait()
    if len(raw) > settings.body_limit:
        return too_large(settings)
    return raw if content_encoding is None else inflate(raw, content_encoding, settings)


async def read_body(
    content: StreamReader,
    content_length: int | None,
    content_encoding: str | None,
    settings: IngestSettings,
) -> Body:
    """The body as published (inflated when it came compressed), or why not, read within
    `body_timeout`."""
    if content_length is not None and content_length > settings.body_limit:
        return too_large(settings)
    try:
        async with asyncio.timeout(settings.body_timeout):
            if content_length is not None:  # the parser stops at Content-Length
                raw: bytes | None = await content.read()
            else:
                raw = await _read_capped(content, settings.body_limit)
    except TimeoutError:
        return Refusal(408, "body not received in time", "CALLSTREAM_INGEST_BODY_TIMEOUT")
    except web.RequestPayloadError:  # a chunked body aiohttp's parser refused
        return Refusal(400, "malformed body")
    if raw is None:
        return too_large(settings)
    if content_encoding is None:
        return raw
    return inflate(raw, content_encoding, settings)


async def _read_capped(content: StreamReader, limit: int) -> bytes | None:
    """Every chunk until the end, or None as soon as more than `limit` bytes came."""
    chunks: list[bytes] = []
    size = 0
    while chunk := await content.readany():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def inflate(raw: bytes, content_encoding: str, settings: IngestSettings) -> Body:
    coding = content_encoding.strip().lower()
    if coding in {"", "identity"}:
        return raw
    wbits = _WBITS.get(coding)
    if wbits is None:
        detail = f"Content-Encoding {content_encoding[:40]!r} is not gzip, deflate or identity"
        return Unreadable(raw, DecodeError("unsupported_encoding", detail))
    body = _inflated(raw, coding, wbits, settings.decompressed_limit)
    return inflated_too_large(settings) if body is None else body


def _inflated(raw: bytes, coding: str, wbits: int, limit: int) -> bytes | Unreadable | None:
    """The inflated body, None past `limit`, or why it does not inflate."""
    inflater = zlib.decompressobj(wbits)
    try:
        body = inflater.decompress(raw, limit + 1)
    except zlib.error as err:
        return Unreadable(raw, DecodeError("invalid_encoding", f"{coding}: {err}"))
    if len(body) > limit or inflater.unconsumed_tail:
        return None
    if not inflater.eof:
        return Unreadable(raw, DecodeError("invalid_encoding", f"{coding}: truncated"))
    if inflater.unused_data:
        detail = f"{coding}: {len(inflater.unused_data)} bytes after the end"
        return Unreadable(raw, DecodeError("invalid_encoding", detail))
    return body
