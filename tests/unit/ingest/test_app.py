from __future__ import annotations

import asyncio
import gzip
import itertools
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from common.topics import Topics
from ingest.app import INGEST, build_app
from ingest.durable import DurableWriter
from ingest.openapi import OPENAPI
from ingest.runner import IngestRunner
from ingest.settings import IngestSettings
from ingest.spool import Spool
from tests.support.fakes import FakeProducer, connect_to
from tests.support.sim import sim_tenants

ROOT = Path(__file__).resolve().parents[3]
CALLSTATE = (ROOT / "yunhu" / "examples" / "callstate.json").read_bytes()
SEED_CDR = (ROOT / "yunhu" / "examples" / "cdr.json").read_bytes()
KEY = sim_tenants()["9024"].callback_key
URL = f"/callbacks/9024/callstate?key={KEY}"


@pytest.fixture
def producer() -> FakeProducer:
    return FakeProducer()


class IngestTestServer(TestServer):
    """Serves the app as `callstream ingest` does: the callback fast path in front."""

    async def _make_runner(self, **kwargs: Any) -> web.AppRunner:
        return IngestRunner(self.app, **kwargs)


@pytest.fixture(params=["routed", "served"])
async def client(
    request: pytest.FixtureRequest, tmp_path: Path, producer: FakeProducer
) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    """Every test runs twice: through the app's router, and served as `callstream ingest`
    serves (`IngestRunner`: the fast path, handing what it does not take to aiohttp)."""
    settings = IngestSettings(ack_timeout=0.3, max_in_flight=8)
    app = build_app(
        settings, sim_tenants(), Topics(), Spool(tmp_path, max_bytes=1 << 20), connect_to(producer)
    )
    server = TestServer(app) if request.param == "routed" else IngestTestServer(app)
    async with TestClient(server) as test_client:
        for _ in range(100):  # the producer attaches in the background
            if app[INGEST].writer.producer is not None and not app[INGEST].writer.spooling:
                break
            await asyncio.sleep(0.01)
        yield test_client


async def test_a_callback_is_published_as_received_with_its_headers(
    client: TestClient[web.Request, web.Application], producer: FakeProducer
) -> None:
    response = await client.post(URL, data=CALLSTATE, headers={"Content-Type": "application/json"})
    assert response.status == 200
    assert await response.json() == {"status": "ok"}
    [sent] = producer.sent
    assert (sent.topic, sent.key, sent.value) == (
        "callstream.callstate.raw",
        b"526d637c-e8fe-11ea-a849-cf6e45e88543",
        CALLSTATE,
    )
    assert sent.headers["tenant"] == b"9024"
    assert sent.headers["kind"] == b"callstate"
    assert sent.headers["content-type"] == b"application/json"
    assert sent.headers["source"] == b"127.0.0.1"
    assert sent.headers["schema-version"] == b"1"
    assert len(sent.headers["event-id"]) == 32
    assert int(sent.headers["received-at"]) > 1_700_000_000_000


async def test_each_event_gets_its_own_id(
    client: TestClient[web.Request, web.Application], producer: FakeProducer
) -> None:
    for _ in range(3):
        assert (await client.post(URL, data=CALLSTATE)).status == 200
    assert len({s.headers["event-id"] for s in producer.sent}) == 3


async def test_the_documents_malformed_cdr_is_dead_lettered_byte_for_byte(
    client: TestClient[web.Request, web.Application], producer: FakeProducer
) -> None:
    response = await client.post(f"/callbacks/9024/cdr?key={KEY}", data=SEED_CDR)
    assert response.status == 400
    answer = await response.json()
    assert (answer["error"], answer["reason"]) == ("invalid callback", "invalid_json")
    [sent] = producer.sent
    assert (sent.topic, sent.key, sent.value) == ("callstream.deadletter", None, SEED_CDR)
    assert sent.headers["dlq-reason"] == b"invalid_json"
    assert sent.headers["dlq-service"] == b"ingest"
    assert sent.headers["dlq-source-topic"] == b"callstream.cdr.raw"


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/callbacks/9024/callstate", 401),
        ("/callbacks/9024/callstate?key=wrong", 403),
        (f"/callbacks/9999/callstate?key={KEY}", 403),
        (f"/callbacks/9024/other?key={KEY}", 404),
    ],
)
async def test_refusals_publish_nothing(
    client: TestClient[web.Request, web.Application], producer: FakeProducer, path: str, status: int
) -> None:
    response = await client.post(path, data=CALLSTATE)
    assert response.status == status
    assert producer.sent == []


async def test_wrong_method_is_405(
    client: TestClient[web.Request, web.Application], producer: FakeProducer
) -> None:
    assert (await client.get(URL)).status == 405
    assert producer.sent == []


async def test_a_body_over_the_limit_is_413(
    client: TestClient[web.Request, web.Application], producer: FakeProducer
) -> None:
    response = await client.post(URL, data=b"{" + b" " * (64 * 1024) + b"}")
    assert response.status == 413
    assert producer.sent == []


async def test_gzip_is_accepted_and_a_gzip_bomb_is_413(
    client: TestClient[web.Request, web.Application], producer: FakeProducer
) -> None:
    packed = gzip.compress(CALLSTATE)
    response = await client.post(URL, data=packed, headers={"Content-Encoding": "gzip"})
    assert response.status == 200
    assert producer.sent[0].value == CALLSTATE

    bomb = gzip.compress(b" " * (50 * 1024 * 1024))
    assert len(bomb) < 64 * 1024
    response = await client.post(URL, data=bomb, headers={"Content-Encoding": "gzip"})
    assert response.status == 413
    assert len(producer.sent) == 1


async def test_kafka_silent_means_spool_then_drain(
    client: TestClient[web.Request, web.Application], producer: FakeProducer
) -> None:
    producer.down = True
    response = await client.post(URL, data=CALLSTATE)
    assert response.status == 200, "durable in the spool"
    writer = client.app[INGEST].writer
    assert writer.spooling
    assert writer.spool.records == 1
    ready = await client.get("/readyz")
    assert ready.status == 200
    assert (await ready.json())["kafka"] == "spooling"

    producer.down = False
    for _ in range(100):
        if producer.sent and writer.spool.records == 0:
            break
        await asyncio.sleep(0.05)
    assert [s.value for s in producer.sent] == [CALLSTATE]
    assert writer.spool.records == 0
    await asyncio.sleep(0.6)  # the drainer's next look switches back to direct publishing
    assert (await (await client.get("/readyz")).json())["kafka"] == "direct"


async def test_too_many_in_flight_is_503_with_retry_after(
    client: TestClient[web.Request, web.Application], producer: FakeProducer
) -> None:
    client.app[INGEST].in_flight = 8
    response = await client.post(URL, data=CALLSTATE)
    assert response.status == 503
    assert response.headers["Retry-After"] == "2"
    assert producer.sent == []


async def test_probes_metrics_and_openapi(client: TestClient[web.Request, web.Application]) -> None:
    assert (await client.get("/healthz")).status == 200
    assert (await client.get("/readyz")).status == 200
    await client.post(URL, data=CALLSTATE)
    await client.post("/callbacks/9024/callstate?key=nope", data=CALLSTATE)
    text = await (await client.get("/metrics")).text()
    assert (
        'callstream_ingest_requests_total{kind="callstate",status="200",tenant="9024"} 1.0' in text
    )
    assert 'callstream_ingest_auth_failures_total{reason="forbidden"} 1.0' in text
    assert "callstream_ingest_publish_seconds_bucket" in text
    assert await (await client.get("/openapi.json")).json() == OPENAPI


def test_the_committed_openapi_document_is_current() -> None:
    committed = json.loads((ROOT / "docs" / "openapi.json").read_text())
    assert committed == OPENAPI, "run: python -m ingest.openapi > docs/openapi.json"


class BrokenProducer:
    """A producer whose send fails with something that is not a Kafka error."""

    def send(self, *args: object, **kwargs: object) -> None:
        raise AttributeError("a bug in the publishing path")


async def test_an_unexpected_publishing_failure_still_keeps_the_event(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20)
    app = build_app(
        IngestSettings(),
        sim_tenants(),
        Topics(),
        spool,
        connect_to(BrokenProducer()),  # type: ignore[arg-type]
    )
    async with TestClient(TestServer(app)) as test_client:
        writer = app[INGEST].writer
        for _ in range(100):
            if writer.producer is not None:
                break
            await asyncio.sleep(0.01)
        writer.spooling = False  # as if Kafka had been healthy until now
        response = await test_client.post(URL, data=CALLSTATE)
        assert response.status == 200
        assert spool.records == 1
        await asyncio.sleep(0.3)
        assert spool.records == 1, "still kept: the drainer failed and lived on"


async def _spooled_while_kafka_is_down(
    tmp_path: Path, producer: FakeProducer, settings: IngestSettings
) -> tuple[web.Application, Spool]:
    spool = Spool(tmp_path, max_bytes=1 << 20)
    app = build_app(settings, sim_tenants(), Topics(), spool, connect_to(producer))
    producer.down = True
    return app, spool


async def test_shutdown_publishes_what_the_spool_holds_when_kafka_is_back(
    tmp_path: Path, producer: FakeProducer
) -> None:
    settings = IngestSettings(ack_timeout=0.2, shutdown_timeout=5)
    app, spool = await _spooled_while_kafka_is_down(tmp_path, producer, settings)

    async def kafka_back(_app: web.Application) -> None:
        producer.down = False  # only once shutdown has begun: the drainer is backing off

    app.on_shutdown.append(kafka_back)
    async with TestClient(TestServer(app)) as test_client:
        assert (await test_client.post(URL, data=CALLSTATE)).status == 200
        await asyncio.sleep(0.5)  # a drain attempt failed; the drainer now waits
        assert spool.records == 1
    assert [s.value for s in producer.sent] == [CALLSTATE]
    assert spool.records == 0
    assert list(tmp_path.glob("*.seg")) == []


async def test_shutdown_with_kafka_still_down_keeps_the_spool_for_the_next_start(
    tmp_path: Path, producer: FakeProducer
) -> None:
    settings = IngestSettings(ack_timeout=0.2, shutdown_timeout=2)
    app, _ = await _spooled_while_kafka_is_down(tmp_path, producer, settings)
    async with TestClient(TestServer(app)) as test_client:
        assert (await test_client.post(URL, data=CALLSTATE)).status == 200
        started = asyncio.get_running_loop().time()
    assert asyncio.get_running_loop().time() - started < settings.shutdown_timeout + 1
    assert producer.sent == []
    reopened = Spool(tmp_path, max_bytes=1 << 20)
    reopened.open()
    assert reopened.records == 1
    await reopened.close()


async def test_the_drainer_yields_while_an_append_is_still_being_written(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20)
    spool.open()
    writer = DurableWriter(FakeProducer(), spool)
    spool._bytes = 100  # an append has reserved its bytes; its write has not landed yet
    drainer = asyncio.create_task(writer.drain_forever(idle=0.05))
    ticks = 0
    for _ in range(5):  # a drainer spinning without yielding would never let these run
        await asyncio.sleep(0.01)
        ticks += 1
    assert ticks == 5
    spool._bytes = 0
    writer.stop_draining()
    await asyncio.wait_for(drainer, 2)
    await spool.close()


async def test_the_spool_hands_over_to_kafka_under_sustained_traffic(tmp_path: Path) -> None:
    """Events keep arriving while the spool drains: new ones must not keep the spool from
    ever emptying (every event would go through the spool for as long as traffic lasts)."""
    spool = Spool(tmp_path, max_bytes=1 << 24)
    spool.open()
    producer = FakeProducer()
    writer = DurableWriter(producer, spool, ack_timeout=1.0)
    writer.spooling = True  # as after an outage
    for index in range(200):
        await writer.write("raw", b"k", f"old-{index}".encode(), [])
    stop = asyncio.Event()
    where: list[str] = []

    async def client(name: int) -> None:
        for index in itertools.count():
            if stop.is_set():
                return
            where.append(await writer.write("raw", b"k", f"new-{name}-{index}".encode(), []))
            await asyncio.sleep(0)  # the fake acknowledges at once: a real ack yields

    clients = [asyncio.create_task(client(n)) for n in range(16)]
    drainer = asyncio.create_task(writer.drain_forever(idle=0.05))
    for _ in range(100):
        await asyncio.sleep(0.05)
        if not writer.spooling:
            break
    handed_over = not writer.spooling
    await asyncio.sleep(0.2)
    stop.set()
    await asyncio.gather(*clients)
    writer.stop_draining()
    await asyncio.wait_for(drainer, 5)
    await spool.close()
    assert handed_over, f"still spooling after 5 s of traffic ({where.count('spool')} spooled)"
    assert where[-1] == "kafka"
    sent = [s.value for s in producer.sent]
    assert sent[:200] == [f"old-{i}".encode() for i in range(200)], "the spool goes first"
    assert len(sent) == len(set(sent)) == 200 + len(where)
