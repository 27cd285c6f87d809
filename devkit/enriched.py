"""Enriched records (`callstream.callstate`, `callstream.cdr`) of simulated calls, made
with enrich's own transform, for the board's tests and benchmark."""

from __future__ import annotations

from typing import Any

import msgspec

from common.config import KafkaSettings
from common.records import CallStateRecord, CdrRecord
from common.topics import Header, Topics
from devkit.raw import TZ, publish, simulated_callbacks
from processors.enrich.transform import enrich, origin

Enriched = CallStateRecord | CdrRecord


def enriched_records(
    calls: int, seed: int, *, shift_ms: int = 0, spread_ms: int = 0
) -> list[Enriched]:
    """Call i's records, its times moved by `shift_ms + i * spread_ms`."""
    out: list[Enriched] = []
    calls_seen: dict[str, int] = {}
    for index, item in enumerate(simulated_callbacks(calls, seed)):
        headers = {Header.TENANT: item.companycode.encode(), Header.RECEIVED_AT: b"0"}
        record = enrich(item.kind, item.body, headers, origin(headers, "raw", 0, index), TZ)
        call = calls_seen.setdefault(item.uuid, len(calls_seen))
        out.append(_shifted(record, shift_ms + call * spread_ms))
    return out


def _shifted(record: Enriched, by_ms: int) -> Any:
    moved = {}
    for name in ("started", "ended", "answered_at"):
        moment = getattr(record, name, None)
        if moment is not None:
            moved[name] = msgspec.structs.replace(moment, epoch_ms=moment.epoch_ms + by_ms)
    return msgspec.structs.replace(record, **moved)


async def publish_enriched(kafka: KafkaSettings, topics: Topics, records: list[Enriched]) -> None:
    await publish(
        kafka,
        [
            (
                topics.cdr if isinstance(record, CdrRecord) else topics.callstate,
                record.uuid.encode(),
                msgspec.json.encode(record),
                [(Header.TENANT, record.tenant.encode())],
            )
            for record in records
        ],
    )
