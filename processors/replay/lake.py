"""`replay lake`: archived raw records back into Kafka, after retention dropped them."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import Callable
from dataclasses import dataclass

from processors.lake.lines import LakeLine, decode_lines, hour_in_key, hour_prefixes, topic_folder
from processors.replay.progress import Progress
from processors.replay.publish import Republisher, replay_headers
from processors.replay.times import Window


@dataclass(frozen=True, slots=True)
class LakeStore:
    """Where the lake is: blocking calls, so unit tests can pass plain functions."""

    list_keys: Callable[[str], list[str]]  # prefix → object keys
    list_folders: Callable[[str], list[str]]  # prefix → the names of the folders right below
    get_object: Callable[[str], bytes]  # key → body
    prefix: str = ""


def keys_in_window(store: LakeStore, topic: str, tenant: str | None, window: Window) -> list[str]:
    """Objects whose hour overlaps the window: only those hours' folders are listed."""
    folder = topic_folder(store.prefix, topic)
    tenants = [tenant] if tenant is not None else store.list_folders(folder)
    return sorted(
        key
        for name in tenants
        for hour in hour_prefixes(f"{folder}{name}/", window.start, window.end)
        for key in store.list_keys(hour)
    )


def by_hour(keys: list[str]) -> list[list[str]]:
    """Keys grouped by the hour in their names, oldest first. A record's copies (a re-run
    of the lake rewrites its objects) always share their hour: one group at a time is
    enough to tell them apart, and memory holds one hour, not the whole window."""
    groups: dict[object, list[str]] = {}
    for key in keys:
        groups.setdefault(hour_in_key(key), []).append(key)
    return [groups[hour] for hour in sorted(groups, key=str)]


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
    """Re-injects each archived record of the window once, hour by hour; within an hour,
    per partition in offset order (so per-call order holds)."""
    keys = await asyncio.to_thread(keys_in_window, store, topic, tenant, window)
    progress.total, progress.unit = len(keys), "objects"  # records per object are unknown
    for group in by_hour(keys):
        lines: dict[tuple[int, int], LakeLine] = {}
        for key in group:
            body = await asyncio.to_thread(store.get_object, key)
            for line in decode_lines(gzip.decompress(body)):
                if not window.holds(line.timestamp):
                    continue
                if (line.partition, line.offset) in lines:
                    progress.counts.update(duplicates=1)
                lines[(line.partition, line.offset)] = line
            progress.advance()
        for position in sorted(lines):
            line = lines[position]
            source = f"lake:{line.topic}/{line.partition}/{line.offset}"
            headers = replay_headers(line.header_pairs(), "lake", source)
            value = line.value_bytes()
            await publisher.send(to_topic or line.topic, line.key_bytes(), value, headers)
            progress.counts.update(republished=1)
    await publisher.flush()
    return publisher.sent
