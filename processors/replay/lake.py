"""`replay lake`: archived raw records back into Kafka, after retention dropped them."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import Callable
from dataclasses import dataclass

from processors.lake.lines import LakeLine, decode_lines, hour_in_key, hour_prefixes
from processors.replay.progress import Progress
from processors.replay.publish import Republisher, replay_headers
from processors.replay.times import Window


@dataclass(frozen=True, slots=True)
class LakeStore:
    """Where the lake is: blocking calls, so unit tests can pass plain functions."""

    list_keys: Callable[[str], list[str]]  # prefix → object keys
    get_object: Callable[[str], bytes]  # key → body
    prefix: str = ""


def keys_in_window(store: LakeStore, topic: str, tenant: str | None, window: Window) -> list[str]:
    """Objects whose hour overlaps the window."""
    first_hour = window.start.replace(minute=0, second=0, microsecond=0)
    keys = []
    for listed in hour_prefixes(store.prefix, topic, tenant, window.start, window.end):
        for key in store.list_keys(listed):
            hour = hour_in_key(key)
            if hour is not None and first_hour <= hour < window.end:
                keys.append(key)
    return sorted(keys)


async def replay_lake(
    store: LakeStore,
    topic: str,
    window: Window,
    *,
    tenant: str | None,
    publisher: Republisher,
    progress: Progress,
    to_topic: str | None = None,
) -> int:
    """Re-injects each archived record of the window once (objects rewritten by a re-run of
    the lake may overlap: records are told apart by partition and offset)."""
    keys = await asyncio.to_thread(keys_in_window, store, topic, tenant, window)
    progress.total = None
    lines: dict[tuple[int, int], LakeLine] = {}
    for key in keys:
        body = await asyncio.to_thread(store.get_object, key)
        for line in decode_lines(gzip.decompress(body)):
            if not window.holds(line.timestamp):
                continue
            if (line.partition, line.offset) in lines:
                progress.counts.update(duplicates=1)
            lines[(line.partition, line.offset)] = line
    progress.total = len(lines)
    for position in sorted(lines):  # per partition in offset order: per-call order holds
        line = lines[position]
        source = f"lake:{line.topic}/{line.partition}/{line.offset}"
        headers = replay_headers(line.header_pairs(), "lake", source)
        await publisher.send(to_topic or line.topic, line.key_bytes(), line.value_bytes(), headers)
        progress.advance(republished=1)
    await publisher.flush()
    return publisher.sent
