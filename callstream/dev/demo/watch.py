"""What the live view shows: service metrics scraped over HTTP, and the latest calls."""

from __future__ import annotations

import contextlib
from collections import deque
from dataclasses import dataclass, field

import aiohttp
import msgspec
from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from common.records import CdrRecord

Samples = list[tuple[str, dict[str, str], float]]


async def scrape(session: aiohttp.ClientSession, url: str | None) -> Samples:
    if url is None:
        return []
    with contextlib.suppress(aiohttp.ClientError, TimeoutError, ValueError):
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=2)) as response:
            text = await response.text()
        return [
            (s.name, s.labels, s.value)
            for family in text_string_to_metric_families(text)
            for s in family.samples
        ]
    return []


def total(samples: Samples, name: str, **labels: str) -> int:
    return int(
        sum(
            value
            for found, have, value in samples
            if found == name and all(have.get(k) == v for k, v in labels.items())
        )
    )


def ok_requests(samples: Samples) -> int:
    return int(
        sum(
            value
            for name, labels, value in samples
            if name == "callstream_ingest_requests_total"
            and labels.get("status", "").startswith("2")
        )
    )


@dataclass
class LatestCalls:
    """Tails the enriched CDR topic from the run's start, keeping the last few calls."""

    consumer: AIOKafkaConsumer
    starts: dict[TopicPartition, int]
    calls: deque[CdrRecord] = field(default_factory=lambda: deque(maxlen=6))

    async def follow(self) -> None:
        self.consumer.assign(list(self.starts))
        for tp, offset in self.starts.items():
            self.consumer.seek(tp, offset)
        decoder = msgspec.json.Decoder(CdrRecord)
        while True:
            batches = await self.consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    with contextlib.suppress(msgspec.DecodeError):
                        self.calls.append(decoder.decode(record.value))
