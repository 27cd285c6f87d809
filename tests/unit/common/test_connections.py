from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from common.connections import OTHER_FILES, ConnectionBound, check_open_files

HALF_A_HEAD = b"POST /callbacks/9024/callstate?key=k HTTP/1.1\r\nHost: t\r\n"
Peer = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def slow_answer(request: web.BaseRequest) -> web.Response:
    await asyncio.sleep(float(request.query.get("sleep", "0")))
    return web.Response(text="ok")


@dataclass
class Listening:
    """A bounded server and the clients a test opened to it (closed when it ends)."""

    bound: ConnectionBound
    port: int
    writers: list[asyncio.StreamWriter] = field(default_factory=list)

    async def connect(self) -> Peer:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.writers.append(writer)
        return reader, writer

    async def half_heads(self, count: int) -> list[Peer]:
        peers = []
        for _ in range(count):
            peer = await self.connect()
            peer[1].write(HALF_A_HEAD)
            await peer[1].drain()
            peers.append(peer)
            await asyncio.sleep(0)  # the server accepts them in this order
        return peers


@contextlib.asynccontextmanager
async def listening(limit: int) -> AsyncIterator[Listening]:
    server = web.Server(slow_answer, keepalive_timeout=75)
    bound = ConnectionBound(server, limit, grace=5.0)
    listener = await asyncio.get_running_loop().create_server(bound, "127.0.0.1", 0)
    clients = Listening(bound, listener.sockets[0].getsockname()[1])
    try:
        yield clients
    finally:
        for writer in clients.writers:
            writer.close()
        listener.close()
        await server.shutdown(1.0)


async def closed_by_server(peer: Peer, within: float = 0.5) -> bool:
    try:
        return await asyncio.wait_for(peer[0].read(), within) == b""
    except TimeoutError:
        return False


async def test_past_the_bound_the_oldest_connections_are_closed() -> None:
    async with listening(limit=5) as clients:
        peers = await clients.half_heads(12)
        await asyncio.sleep(0.2)
        assert clients.bound.open == 5
        assert clients.bound.closed_at_bound == 7
        closed = [await closed_by_server(peer, 0.2) for peer in peers]
        assert closed == [True] * 7 + [False] * 5


async def test_a_burst_of_connections_accepted_at_once_is_bounded_too() -> None:
    async with listening(limit=10) as clients:
        peers = await asyncio.gather(*(clients.connect() for _ in range(120)))
        for _, writer in peers:
            writer.write(HALF_A_HEAD)
        await asyncio.sleep(0.3)
        assert clients.bound.open == 10
        assert clients.bound.closed_at_bound == 110


async def test_a_connection_handling_a_request_is_answered_before_it_is_closed() -> None:
    async with listening(limit=3) as clients:
        reader, writer = await clients.connect()
        writer.write(b"GET /?sleep=0.5 HTTP/1.1\r\nHost: t\r\n\r\n")
        await asyncio.sleep(0.1)
        others = await clients.half_heads(4)
        answer = await asyncio.wait_for(reader.read(), 3)
        assert answer.startswith(b"HTTP/1.1 200 OK")
        assert answer.endswith(b"ok")
        assert clients.bound.closed_at_bound == 2  # the busy one and the oldest half head
        assert await closed_by_server(others[0])


async def test_a_larger_bound_closes_a_few_at_a_time() -> None:
    async with listening(limit=128) as clients:
        await clients.half_heads(130)
        await asyncio.sleep(0.2)
        # 128 // 64 when the 129th came; none for the 130th
        assert clients.bound.closed_at_bound == 2
        assert clients.bound.open == 128


async def test_below_the_bound_nothing_is_closed() -> None:
    async with listening(limit=10) as clients:
        peers = await clients.half_heads(10)
        await asyncio.sleep(0.1)
        assert clients.bound.open == 10
        assert clients.bound.closed_at_bound == 0
        assert not any([await closed_by_server(peer, 0.05) for peer in peers])


async def test_a_bound_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        ConnectionBound(web.Server(slow_answer), 0, grace=1.0)


def test_a_bound_beyond_the_open_files_limit_is_warned_of(caplog: pytest.LogCaptureFixture) -> None:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    with caplog.at_level(logging.WARNING, logger="common.connections"):
        assert check_open_files(soft - OTHER_FILES, "CALLSTREAM_X_MAX_CONNECTIONS")
        assert not caplog.records
        assert not check_open_files(soft, "CALLSTREAM_X_MAX_CONNECTIONS")
    assert "ulimit -n" in caplog.text
    assert "CALLSTREAM_X_MAX_CONNECTIONS is" in caplog.text
