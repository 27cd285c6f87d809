"""Raw records as the receiver writes them, for consumer tests and benchmarks."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from zoneinfo import ZoneInfo

from common.config import KafkaSettings
from common.kafka import durable_producer, stop_producer
from common.topics import Header, Topics
from yunhu.sim.traffic import Callback, callbacks, plan_call

TZ = ZoneInfo("Asia/Shanghai")


def raw_headers(callback: Callback, event_id: str) -> list[tuple[str, bytes]]:
    return [
        (Header.TENANT, callback.companycode.encode()),
        (Header.KIND, callback.kind.encode()),
        (Header.RECEIVED_AT, str(int(time.time() * 1000)).encode()),
        (Header.SOURCE, b"127.0.0.1"),
        (Header.CONTENT_TYPE, b"application/json"),
        (Header.EVENT_ID, event_id.encode()),
        (Header.SCHEMA_VERSION, b"1"),
    ]


def simulated_callbacks(calls: int, seed: int) -> list[Callback]:
    rng = random.Random(seed)
    out: list[Callback] = []
    for index in range(calls):
        code = ("9024", "7001", "20000013")[index % 3]
        out.extend(callbacks(plan_call(rng, code, index + 1, int(time.time())), TZ))
    return out


Message = tuple[str, bytes | None, bytes, list[tuple[str, bytes]]]  # topic, key, value, headers


async def publish(kafka: KafkaSettings, messages: list[Message]) -> None:
    """Every message sent, then every acknowledgement awaited."""
    producer = durable_producer(kafka)
    try:
        await producer.start()  # inside: a start that fails (broker down) is closed too
        futures = [
            await producer.send(topic, value, key=key, headers=headers)
            for topic, key, value, headers in messages
        ]
        for future in futures:
            await future
    finally:
        await stop_producer(producer)  # bounded: a cancelled publish, its broker gone


async def publish_raw(kafka: KafkaSettings, topics: Topics, items: list[Callback]) -> None:
    await publish(
        kafka,
        [
            (topics.raw(c.kind), c.uuid.encode(), c.body, raw_headers(c, f"ev-{i}"))
            for i, c in enumerate(items)
        ],
    )


async def publish_until(
    stop: asyncio.Event, kafka: KafkaSettings, topics: Topics, *, calls: int, seed: int
) -> None:
    """Fresh simulated calls in waves until `stop`; each callback is sent once at most
    (a wave that fails, while a broker is down, is not sent again)."""
    wave = 0
    while not stop.is_set():
        wave += 1
        with contextlib.suppress(Exception):
            async with asyncio.timeout(5):
                await publish_raw(kafka, topics, simulated_callbacks(calls, seed=seed + wave))
        await asyncio.sleep(0.05)
