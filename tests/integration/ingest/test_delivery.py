"""Simulator traffic through a real receiver process into the real broker."""

from __future__ import annotations

import asyncio
import random
import signal
import socket
import time
from pathlib import Path
from urllib.parse import urlsplit

from common.kafka import KeyHashPartitioner
from devkit.raw import TZ
from devkit.sim import running_simulator
from tests.integration.conftest import TopicSetFactory
from tests.support.delivery import check_delivery
from tests.support.kafka import read_topic
from tests.support.receiver import running_receiver, start_receiver, stop, wait_healthy
from tests.support.services import Services
from yunhu.sim.poster import TrafficSettings
from yunhu.sim.run import post_traffic
from yunhu.sim.sentlog import read_sent_log
from yunhu.sim.traffic import callbacks, plan_call


async def test_every_acknowledged_callback_is_in_the_raw_topics(
    services: Services, topic_set: TopicSetFactory, tmp_path: Path
) -> None:
    suffix, topics = await topic_set()
    log = tmp_path / "sent.ndjson"
    async with (
        running_receiver(tmp_path, services.kafka, suffix) as receiver,
        running_simulator() as sim,
    ):
        report = await post_traffic(
            sim, TrafficSettings(receiver.url, rate=100, calls=90, seed=21, sent_log=log)
        )
    assert report.calls == 90
    assert report.accepted == sum(report.statuses.values()), report.summary()
    delivery = await check_delivery(services.kafka, topics, log)
    assert delivery.expected == report.accepted > 90 * 3
    assert delivery.missing == []
    assert delivery.duplicates == 0
    tenants = {dict(r.headers)["tenant"] for r in delivery.records}
    assert tenants == {b"9024", b"7001", b"20000013"}
    for record in delivery.records:
        headers = dict(record.headers)
        assert set(headers) >= {
            "tenant",
            "kind",
            "received-at",
            "source",
            "content-type",
            "event-id",
            "schema-version",
        }
        assert headers["source"] == b"127.0.0.1"
    assert len({dict(r.headers)["event-id"] for r in delivery.records}) == len(delivery.records)
    # Placed by key as the Java client (and aiokafka, and enrich) would place them.
    placement = KeyHashPartitioner()
    for record in delivery.records:
        assert record.key is not None
        assert record.partition == placement(record.key, [0, 1, 2], [0, 1, 2])


async def test_sigterm_under_load_loses_nothing_and_exits_0(
    services: Services, topic_set: TopicSetFactory, tmp_path: Path
) -> None:
    suffix, topics = await topic_set()
    log = tmp_path / "sent.ndjson"
    receiver = start_receiver(tmp_path, services.kafka, suffix)
    try:
        await wait_healthy(receiver)
        async with running_simulator() as sim:
            sending = asyncio.create_task(
                post_traffic(
                    sim, TrafficSettings(receiver.url, rate=60, duration=6, seed=4, sent_log=log)
                )
            )
            await asyncio.sleep(2.5)
            receiver.signal(signal.SIGTERM)
            code = await asyncio.to_thread(receiver.proc.wait, 60)
            report = await sending
    finally:
        stop(receiver)
    assert code == 0, receiver.log_text()
    assert report.accepted > 50, report.summary()
    refused = sum(n for (_, s), n in report.statuses.items() if not s.startswith("2"))
    assert refused > 0, "traffic went on after SIGTERM and was refused"
    delivery = await check_delivery(services.kafka, topics, log)
    assert delivery.expected == len(read_sent_log(log)) == report.accepted
    assert delivery.missing == []


def _half_sent_cdr(url: str) -> tuple[socket.socket, bytes, bytes]:
    """A CDR's head and half its body on the wire; returns the socket, the rest, the uuid."""
    plan = plan_call(random.Random(5), "9024", 1, int(time.time()))
    cdr = next(c for c in callbacks(plan, TZ) if c.kind == "cdr")
    head = (
        "POST /callbacks/9024/cdr?key=sim-callback-key-9024 HTTP/1.1\r\nHost: t\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(cdr.body)}\r\n\r\n"
    ).encode()
    where = urlsplit(url)
    sock = socket.create_connection((where.hostname or "", where.port or 80), timeout=30)
    half = len(cdr.body) // 2
    sock.sendall(head + cdr.body[:half])
    return sock, cdr.body[half:], cdr.uuid.encode()


async def test_a_body_still_arriving_at_sigterm_is_read_answered_200_and_published(
    services: Services, topic_set: TopicSetFactory, tmp_path: Path
) -> None:
    suffix, topics = await topic_set()
    receiver = start_receiver(tmp_path, services.kafka, suffix)
    try:
        await wait_healthy(receiver)
        sock, rest, key = _half_sent_cdr(receiver.url)
        with sock:
            await asyncio.sleep(0.3)  # the head is in: its handler is waiting for the body
            receiver.signal(signal.SIGTERM)
            await asyncio.sleep(1)  # the stop has begun
            sock.sendall(rest)
            answer = await asyncio.to_thread(sock.recv, 4096)
        code = await asyncio.to_thread(receiver.proc.wait, 60)
    finally:
        stop(receiver)
    assert answer.startswith(b"HTTP/1.1 200"), answer
    assert code == 0, receiver.log_text()
    published = await read_topic(services.kafka, topics.cdr_raw)
    assert [r.key for r in published] == [key]
