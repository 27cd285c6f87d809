"""The receiver's bound on open connections, against the real `callstream ingest` process
on a real Kafka: raw sockets that open connections and never finish a head."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from common.topics import Topics
from tests.support.kafka import read_topic
from tests.support.rawhttp import Connection, close_all, flood_on_a_grown_heap, post
from tests.support.receiver import Receiver, receiver_on_own_topics
from tests.support.services import Services

MAX_CONNECTIONS = 100
FLOOD_BOUND = 40  # a flood of 32 bounds stays within the test's descriptors
TENANTS = '[[tenant]]\ncompanycode = "9024"\ncallback_key = "bound-9024"\n'
CALLBACK = "/callbacks/9024/callstate?key=bound-9024"
HALF_A_HEAD = b"POST " + CALLBACK.encode() + b" HTTP/1.1\r\nHost: t\r\n"


@pytest.fixture(scope="module")
def bounded(
    services: Services, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Receiver, Topics]]:
    with receiver_on_own_topics(
        services.kafka,
        tmp_path_factory.mktemp("bound"),
        tenants_toml=TENANTS,
        extra_env={"CALLSTREAM_INGEST_MAX_CONNECTIONS": str(MAX_CONNECTIONS)},
    ) as started:
        yield started


@pytest.mark.usefixtures("many_files")
def test_heads_that_never_end_hold_memory_for_the_bound_only(
    services: Services, tmp_path: Path
) -> None:
    pads = b"".join(b"X-Pad-%02d: %s\r\n" % (i, b"a" * 2030) for i in range(31))
    head = HALF_A_HEAD + pads  # as large as a head may be, and never finished
    bound = FLOOD_BOUND
    # A receiver of its own: a heap that an earlier flood grew would take this one's for free.
    with (
        receiver_on_own_topics(
            services.kafka,
            tmp_path,
            tenants_toml=TENANTS,
            extra_env={"CALLSTREAM_INGEST_MAX_CONNECTIONS": str(bound)},
        ) as (receiver, _),
        flood_on_a_grown_heap(receiver.address, head, bound, receiver.rss_kib) as floods,
    ):
        grown = receiver.rss_kib() - floods.rss_kib
        status, _ = receiver.exchange(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
    assert status == 200
    # Without the bound the second flood would add about twice its 28 more heads a bound:
    # 56 bounds' worth. With it the heap stays at the plateau that the churn of closing the
    # oldest leaves, whatever the flood's size.
    assert grown < 16 * bound * len(head) // 1024, f"RSS grew by {grown} KiB"


def test_connections_past_the_bound_close_the_oldest(
    services: Services, bounded: tuple[Receiver, Topics]
) -> None:
    receiver, topics = bounded
    call = f"bound-{uuid.uuid4().hex[:8]}"
    flood = [Connection(receiver.address) for _ in range(MAX_CONNECTIONS * 5)]
    try:
        for connection in flood:
            connection.send(HALF_A_HEAD)
        status, body = receiver.exchange(
            post(CALLBACK, json.dumps({"uuid": call, "status": "ring"}).encode())
        )
        held = receiver.connections_settle(MAX_CONNECTIONS)
        oldest_closed = flood[0].closed_within(5)
        newest_closed = flood[-1].closed_within(0.5)
        still_open = receiver.metric("callstream_ingest_connections")
        closed = receiver.metric("callstream_ingest_connections_closed_at_bound_total")
    finally:
        close_all(flood)
    assert status == 200, body
    # Descriptors, not the receiver's own count: a connection closed at the bound holds
    # one until the event loop lets it go.
    assert held <= MAX_CONNECTIONS, f"{held} connections held of {len(flood)} opened"
    assert oldest_closed is not None, "the oldest connection stayed open"
    assert newest_closed is None, "the newest connection was closed"
    assert still_open <= MAX_CONNECTIONS
    assert closed >= len(flood) - MAX_CONNECTIONS
    records = asyncio.run(read_topic(services.kafka, topics.callstate_raw))
    assert [r.key for r in records] == [call.encode()]
