from __future__ import annotations

import asyncio
import gzip
import itertools
import json
import zlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from devkit.sim import sim_tenants
from ingest.accept import Ingest
from ingest.durable import DurableWriter
from ingest.openapi import OPENAPI
from ingest.settings import IngestSettings
from ingest.spool import Spool
from tests.support.fakes import FakeProducer
from tests.support.ingest_app import Client, make_ingest, serving

ROOT = Path(__file__).resolve().parents[3]
CALLSTATE = (ROOT / "yunhu" / "examples" / "callstate.json").read_bytes()
SEED_CDR = (ROOT / "yunhu" / "examples" / "cdr.json").read_bytes()
KEY = sim_tenants()["9024"].callback_key
URL = f"/callbacks/9024/callstate?key={KEY}"


@pytest.fixture
def producer() -> FakeProducer:
    return FakeProducer()


@pytest.fixture
def ingest(tmp_path: Path) -> Ingest:
    return make_ingest(IngestSettings(ack_timeout=0.3, max_in_flight=8), tmp_path)


@pytest.fixture
async def client(ingest: Ingest, producer: FakeProducer) -> AsyncIterator[Client]:
    async with serving(ingest, producer) as test_client:
        yield test_client


async def test_a_callback_is_published_as_received_with_its_headers(
    client: Client, producer: FakeProducer
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


async def test_each_event_gets_its_own_id(client: Client, producer: FakeProducer) -> None:
    for _ in range(3):
        assert (await client.post(URL, data=CALLSTATE)).status == 200
    assert len({s.headers["event-id"] for s in producer.sent}) == 3


async def test_the_documents_malformed_cdr_is_dead_lettered_byte_for_byte(
    client: Client, producer: FakeProducer
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
    client: Client, producer: FakeProducer, path: str, status: int
) -> None:
    response = await client.post(path, data=CALLSTATE)
    assert response.status == status
    assert producer.sent == []


async def test_wrong_method_is_405(client: Client, producer: FakeProducer) -> None:
    assert (await client.get(URL)).status == 405
    assert producer.sent == []


async def test_a_body_over_the_limit_is_413_naming_the_limit(
    client: Client, producer: FakeProducer
) -> None:
    response = await client.post(URL, data=b"{" + b" " * (64 * 1024) + b"}")
    assert response.status == 413
    assert await response.json() == {
        "error": "body too large",
        "setting": "CALLSTREAM_INGEST_BODY_LIMIT",
        "limit": "65536",
    }
    assert producer.sent == []


EMPTY_STORED_BLOCK = b"\x00\x00\x00\xff\xff"  # deflate: not final, stored, length 0


async def _chunks(data: bytes, size: int = 4096) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


@pytest.mark.parametrize("encoding", [None, "identity", "br"])
async def test_the_body_limit_holds_for_chunked_bodies_of_any_encoding(
    client: Client, producer: FakeProducer, encoding: str | None
) -> None:
    headers = {"Content-Encoding": encoding} if encoding else {}
    body = b"{" + b" " * (200 * 1024) + b"}"
    response = await client.post(URL, data=_chunks(body), headers=headers)
    assert response.status == 413
    assert (await response.json())["setting"] == "CALLSTREAM_INGEST_BODY_LIMIT"
    assert producer.sent == []


async def test_padded_gzip_is_held_to_the_limit_on_the_wire(
    client: Client, producer: FakeProducer
) -> None:
    packer = zlib.compressobj(wbits=31)
    padded = packer.compress(CALLSTATE) + packer.flush(zlib.Z_SYNC_FLUSH)
    padded += EMPTY_STORED_BLOCK * 20_000  # bytes on the wire, nothing inflated
    padded += packer.flush()
    assert zlib.decompress(padded, wbits=31) == CALLSTATE
    assert len(padded) > 64 * 1024
    response = await client.post(URL, data=_chunks(padded), headers={"Content-Encoding": "gzip"})
    assert response.status == 413
    assert producer.sent == []


@pytest.mark.parametrize(
    ("body", "encoding", "status", "reason"),
    [
        (gzip.compress(CALLSTATE) + b"garbage", "gzip", 400, "invalid_encoding"),
        (CALLSTATE, "gzip", 400, "invalid_encoding"),
        (gzip.compress(CALLSTATE)[:-9], "gzip", 400, "invalid_encoding"),
        (CALLSTATE, "br", 415, "unsupported_encoding"),
    ],
)
async def test_bodies_that_do_not_inflate_are_dead_lettered_as_sent(  # noqa: PLR0917
    client: Client, producer: FakeProducer, body: bytes, encoding: str, status: int, reason: str
) -> None:
    response = await client.post(URL, data=body, headers={"Content-Encoding": encoding})
    assert response.status == status
    assert (await response.json())["reason"] == reason
    [sent] = producer.sent
    assert (sent.topic, sent.value) == ("callstream.deadletter", body)
    assert sent.headers["dlq-reason"] == reason.encode()


async def test_a_body_of_another_tenant_is_dead_lettered(
    client: Client, producer: FakeProducer
) -> None:
    body = json.dumps({"uuid": "u-1", "companycode": "7001"}).encode()
    response = await client.post(f"/callbacks/9024/cdr?key={KEY}", data=body)
    assert response.status == 400
    assert (await response.json())["reason"] == "tenant_mismatch"
    [sent] = producer.sent
    assert (sent.topic, sent.value, sent.headers["tenant"]) == (
        "callstream.deadletter",
        body,
        b"9024",
    )
    same = json.dumps({"uuid": "u-2", "companycode": 9024}).encode()
    assert (await client.post(f"/callbacks/9024/cdr?key={KEY}", data=same)).status == 200


@pytest.mark.parametrize("uuid", ["../x", "a/b", "", "x" * 200, ".hidden"])
async def test_a_uuid_unfit_for_a_key_is_dead_lettered(
    client: Client, producer: FakeProducer, uuid: str
) -> None:
    body = json.dumps({"uuid": uuid, "companycode": "9024"}).encode()
    response = await client.post(URL, data=body)
    assert response.status == 400
    assert (await response.json())["reason"] == "invalid_uuid"
    assert [s.topic for s in producer.sent] == ["callstream.deadletter"]


async def test_kafka_silent_means_spool_then_drain(
    client: Client, producer: FakeProducer, ingest: Ingest
) -> None:
    producer.down = True
    response = await client.post(URL, data=CALLSTATE)
    assert response.status == 200, "durable in the spool"
    writer = ingest.writer
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
    client: Client, producer: FakeProducer, ingest: Ingest
) -> None:
    ingest.in_flight = 8
    response = await client.post(URL, data=CALLSTATE)
    assert response.status == 503
    assert response.headers["Retry-After"] == "2"
    assert producer.sent == []


async def test_probes_metrics_and_openapi(client: Client) -> None:
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
    ingest = make_ingest(IngestSettings(), tmp_path)
    async with serving(
        ingest, BrokenProducer(), attached=lambda i: i.writer.producer is not None
    ) as test_client:
        ingest.writer.spooling = False  # as if Kafka had been healthy until now
        response = await test_client.post(URL, data=CALLSTATE)
        assert response.status == 200
        assert ingest.writer.spool.records == 1
        await asyncio.sleep(0.3)
        assert ingest.writer.spool.records == 1, "still kept: the drainer failed and lived on"


async def test_shutdown_publishes_what_the_spool_holds_when_kafka_is_back(
    tmp_path: Path, producer: FakeProducer
) -> None:
    ingest = make_ingest(IngestSettings(ack_timeout=0.2, shutdown_timeout=5), tmp_path)
    producer.down = True
    async with serving(ingest, producer, attached=lambda i: i.writer.producer is not None) as c:
        assert (await c.post(URL, data=CALLSTATE)).status == 200
        await asyncio.sleep(0.5)  # a drain attempt failed; the drainer now waits
        assert ingest.writer.spool.records == 1
        producer.down = False  # only as shutdown begins: the drainer is backing off
    assert [s.value for s in producer.sent] == [CALLSTATE]
    assert ingest.writer.spool.records == 0
    assert list(tmp_path.glob("*.seg")) == []


async def test_shutdown_with_kafka_still_down_keeps_the_spool_for_the_next_start(
    tmp_path: Path, producer: FakeProducer
) -> None:
    settings = IngestSettings(ack_timeout=0.2, shutdown_timeout=2)
    ingest = make_ingest(settings, tmp_path)
    producer.down = True
    async with serving(ingest, producer, attached=lambda i: i.writer.producer is not None) as c:
        assert (await c.post(URL, data=CALLSTATE)).status == 200
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
