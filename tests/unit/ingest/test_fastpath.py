"""The fast path over real sockets, with raw HTTP/1.1 bytes: what aiohttp's client never sends
(pipelining, a request in single bytes) and what only the fast path does (hand-offs)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from common.topics import Topics
from ingest import fastpath
from ingest.app import INGEST, build_app
from ingest.fastpath import CallbackServer
from ingest.runner import IngestRunner
from ingest.settings import IngestSettings
from ingest.spool import Spool
from tests.support.fakes import FakeProducer, Sent, connect_to
from tests.support.ports import free_port
from tests.support.sim import sim_tenants

KEY = sim_tenants()["9024"].callback_key
BODY_LIMIT = 4096


@dataclass
class HeldProducer(FakeProducer):
    """Acknowledges only when told to (`release`), or at once while `held` is False."""

    held: bool = False
    pending: list[asyncio.Future[Any]] = field(default_factory=list)

    def send(
        self, topic: str, value: bytes, key: bytes | None = None, headers: Any = None
    ) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.sent.append(Sent(topic, key, value, dict(headers or [])))
        if self.held:
            self.pending.append(future)
        else:
            future.set_result(None)
        return future

    def release(self) -> None:
        self.held = False
        for future in self.pending:
            future.set_result(None)
        self.pending.clear()


@dataclass
class Served:
    port: int
    runner: IngestRunner
    producer: HeldProducer

    @property
    def server(self) -> CallbackServer:
        assert isinstance(self.runner.server, CallbackServer)
        return self.runner.server

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", self.port)


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    producer = HeldProducer()
    settings = IngestSettings(ack_timeout=5.0, body_limit=BODY_LIMIT)
    spool = Spool(tmp_path, max_bytes=1 << 20)
    app = build_app(settings, sim_tenants(), Topics(), spool, connect_to(producer))
    runner = IngestRunner(app, access_log=None, shutdown_timeout=5.0)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    for _ in range(100):  # the producer attaches in the background
        if app[INGEST].writer.producer is not None and not app[INGEST].writer.spooling:
            break
        await asyncio.sleep(0.01)
    try:
        yield Served(port, runner, producer)
    finally:
        if runner.server is not None:  # not already cleaned up by the test
            await runner.cleanup()


def callback(uuid: str, *, extra: bytes = b"") -> bytes:
    body = json.dumps({"uuid": uuid, "status": "ring"}).encode()
    return (
        b"POST /callbacks/9024/callstate?key=%s HTTP/1.1\r\nHost: test\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n%s\r\n%s"
        % (KEY.encode(), len(body), extra, body)
    )


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    status_line, *lines = head.decode().split("\r\n")[:-2]
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    body = await reader.readexactly(int(headers["content-length"]))
    return int(status_line.split()[1]), headers, body


def uuids(sent: list[Sent]) -> list[str]:
    return [json.loads(s.value)["uuid"] for s in sent]


async def test_a_callback_is_answered_by_the_fast_path(served: Served) -> None:
    reader, writer = await served.connect()
    writer.write(callback("u-1"))
    status, headers, body = await read_response(reader)
    assert (status, body) == (200, b'{"status":"ok"}')
    assert headers["content-type"] == "application/json"
    assert "date" in headers
    assert len(served.server.fast) == 1
    assert served.server.routed.connections == []  # aiohttp never saw it
    [sent] = served.producer.sent
    assert (sent.topic, sent.key) == ("callstream.callstate.raw", b"u-1")
    assert sent.headers["source"] == b"127.0.0.1"
    writer.close()


async def test_publish_latency_is_timed_from_the_callback(served: Served) -> None:
    reader, writer = await served.connect()
    writer.write(callback("u-1"))
    assert (await read_response(reader))[0] == 200
    histogram = served.runner.app[INGEST].metrics.publish["kafka"]
    assert sum(histogram.counts) == 1
    assert 0 <= histogram.total < 1.0
    writer.close()


async def test_pipelined_requests_are_answered_in_order_across_a_hand_off(served: Served) -> None:
    reader, writer = await served.connect()
    writer.write(
        callback("u-1") + callback("u-2") + callback("u-3")
        + b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n" + callback("u-4")
    )  # fmt: skip
    answers = [await read_response(reader) for _ in range(5)]
    assert [status for status, _, _ in answers] == [200] * 5
    assert json.loads(answers[3][2]) == {"status": "alive"}
    assert uuids(served.producer.sent) == ["u-1", "u-2", "u-3", "u-4"]
    assert served.server.fast == set()  # the connection is aiohttp's since the GET
    assert len(served.server.routed.connections) == 1
    writer.close()


async def test_a_request_sent_a_byte_at_a_time_is_read_whole(served: Served) -> None:
    reader, writer = await served.connect()
    for byte in callback("u-1"):
        writer.write(bytes([byte]))
        await writer.drain()
        await asyncio.sleep(0)
    assert (await read_response(reader))[0] == 200
    assert uuids(served.producer.sent) == ["u-1"]
    writer.close()


async def test_a_callback_the_fast_path_leaves_alone_is_served_by_aiohttp(served: Served) -> None:
    reader, writer = await served.connect()
    writer.write(callback("u-1"))
    assert (await read_response(reader))[0] == 200
    body = b'{"uuid":"u-2"}'
    writer.write(
        b"POST /callbacks/9024/callstate?key=%s HTTP/1.1\r\nHost: test\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (KEY.encode(), len(body), body)
    )
    status, headers, _ = await read_response(reader)
    assert status == 200
    assert "aiohttp" in headers["server"]
    assert uuids(served.producer.sent) == ["u-1", "u-2"]
    assert served.server.fast == set()
    writer.close()


async def test_connection_close_is_honoured(served: Served) -> None:
    reader, writer = await served.connect()
    writer.write(callback("u-1", extra=b"Connection: close\r\n") + callback("u-2"))
    status, headers, _ = await read_response(reader)
    assert (status, headers["connection"]) == (200, "close")
    assert await asyncio.wait_for(reader.read(), 5) == b""  # closed; u-2 never read
    assert uuids(served.producer.sent) == ["u-1"]
    writer.close()


async def test_an_idle_connection_is_closed(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fastpath, "KEEPALIVE", 0.1)
    reader, writer = await served.connect()
    writer.write(callback("u-1"))
    assert (await read_response(reader))[0] == 200
    assert await asyncio.wait_for(reader.read(), 5) == b""
    assert served.server.fast == set()
    writer.close()


async def test_bytes_arriving_while_one_is_answered_are_bounded_then_served(
    served: Served,
) -> None:
    served.producer.held = True
    reader, writer = await served.connect()
    requests = [callback(f"u-{n}") for n in range(200)]
    writer.write(b"".join(requests))  # ~16 KiB beyond the first: more than the buffer takes
    for _ in range(100):
        if served.producer.sent:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)
    [connection] = served.server.fast
    limit = BODY_LIMIT + 8190
    assert 0 < len(connection._buffer) <= limit + 256 * 1024  # one read past it
    assert connection._paused
    assert len(served.producer.sent) == 1
    probe_reader, probe_writer = await served.connect()
    probe_writer.write(b"GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n")
    assert b"\ncallstream_ingest_in_flight 1.0\n" in (await read_response(probe_reader))[2]
    probe_writer.close()

    served.producer.release()
    answers = [await read_response(reader) for _ in requests]
    assert {status for status, _, _ in answers} == {200}
    assert uuids(served.producer.sent) == [f"u-{n}" for n in range(200)]
    writer.close()


async def test_shutdown_answers_the_callback_in_flight_then_closes(served: Served) -> None:
    reader, writer = await served.connect()
    idle_reader, idle_writer = await served.connect()
    idle_writer.write(callback("u-0"))
    await read_response(idle_reader)
    served.producer.held = True
    writer.write(callback("u-1"))
    for _ in range(100):
        if len(served.producer.sent) == 2:
            break
        await asyncio.sleep(0.01)

    served.runner.app[INGEST].closing = True  # what `serve` does on SIGTERM
    cleanup = asyncio.create_task(served.runner.cleanup())
    assert await asyncio.wait_for(idle_reader.read(), 5) == b""  # idle: closed at once
    await asyncio.sleep(0.2)
    assert not cleanup.done()  # waiting for u-1's acknowledgement
    served.producer.release()
    status, headers, _ = await read_response(reader)
    assert (status, headers["connection"]) == (200, "close")
    await asyncio.wait_for(cleanup, 10)
    assert uuids(served.producer.sent) == ["u-0", "u-1"]
    with pytest.raises(ConnectionRefusedError):
        await served.connect()
    writer.close()
    idle_writer.close()
