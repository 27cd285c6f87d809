"""The board's page: one self-contained HTML file (nothing fetched from elsewhere), and a
server-sent-events stream of snapshots of the board."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import socket
import time

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from common.http_serving import Listen
from processors.board import page
from processors.board.page import page_app, serving_page, snapshot
from processors.board.state import Board
from tests.unit.processors.test_board_state import T0, cdr, event


async def test_the_page_needs_nothing_from_the_internet() -> None:
    async with TestClient(TestServer(page_app(Board()))) as client:
        response = await client.get("/")
        html = await response.text()
    assert response.status == 200
    assert response.content_type == "text/html"
    assert re.findall(r"""(?:src|href)=["']?https?:""", html) == []
    assert "new EventSource(" in html
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy
    assert "connect-src 'self'" in policy


async def test_events_push_snapshots_of_the_board() -> None:
    board = Board()
    board.apply_callstate(event("ring", T0))
    board.apply_cdr(cdr("a", T0 + 5000))
    async with TestClient(TestServer(page_app(board, every=0.05))) as client:
        response = await client.get("/events")
        assert response.headers["Content-Type"] == "text/event-stream"
        first = await response.content.readuntil(b"\n\n")
        board.apply_callstate(event("answer", T0 + 2000))
        states = []
        for _ in range(20):  # a snapshot taken before the change may still be on its way
            later = json.loads((await response.content.readuntil(b"\n\n"))[6:])
            states.append(later["tenants"][0]["extensions"][0]["state"])
            if states[-1] == "talking":
                break
    [tenant] = json.loads(first[6:])["tenants"]
    assert tenant["tenant"] == "9024"
    assert tenant["in_progress"] == 1
    assert [e["state"] for e in tenant["extensions"]] == ["ringing"]
    assert states[-1] == "talking", "pushed without a reload"


async def test_the_url_names_the_port_bound() -> None:
    listen = Listen("tests.page", "127.0.0.1", 0, 8, "a bound")
    async with serving_page(Board(), listen) as url:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", url)
        assert not url.endswith(":0/")


async def test_an_open_stream_ends_when_the_page_stops() -> None:
    listen = Listen("tests.page", "127.0.0.1", 0, 8, "a bound", shutdown_timeout=30)
    async with aiohttp.ClientSession() as session:
        async with serving_page(Board(), listen) as url:
            response = await session.get(url + "events")
            await response.content.readuntil(b"\n\n")
            started = time.monotonic()
        stopped = time.monotonic() - started
        rest = await asyncio.wait_for(response.content.read(), 5)
    assert stopped < 2, f"the page took {stopped:.1f} s to stop with a stream open"
    assert rest.count(b"data: ") <= 1  # at most the snapshot on its way


async def test_many_screens_share_one_snapshot_a_half_period(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made = []

    def counted(board: Board) -> page.Snapshot:
        made.append(time.monotonic())
        return snapshot(board)

    monkeypatch.setattr(page, "snapshot", counted)
    every = 0.2
    async with TestClient(TestServer(page_app(Board(), every=every))) as client:
        streams = [await client.get("/events") for _ in range(20)]
        began = time.monotonic()
        for _ in range(5):  # five events each: a second of streaming
            for stream in streams:
                assert (await stream.content.readuntil(b"\n\n")).startswith(b"data: {")
        took = time.monotonic() - began
    # One snapshot for every 20 events, not one each: at most two a period.
    assert len(made) <= 2 * (took / every + 1), f"{len(made)} snapshots for 100 events"


async def test_a_screen_that_stops_reading_is_dropped(caplog: pytest.LogCaptureFixture) -> None:
    board = Board()
    for number in range(6000):  # an event of 1.5 MB: more than socket buffers hold
        board.apply_callstate(event("ring", T0, uuid=f"c{number}", ext=f"9024{number:04}"))
    async with TestServer(page_app(board, every=0.05, stall=0.5)) as server:
        assert server.runner is not None
        aiohttp_server = server.runner.server
        assert aiohttp_server is not None
        with socket.create_connection((server.host, server.port)) as screen:
            screen.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            screen.sendall(b"GET /events HTTP/1.1\r\nHost: t\r\n\r\n")  # and never reads
            async with asyncio.timeout(2):
                while not aiohttp_server.connections:
                    await asyncio.sleep(0.05)
            began = time.monotonic()
            async with asyncio.timeout(10):
                while aiohttp_server.connections:
                    await asyncio.sleep(0.05)
    assert time.monotonic() - began < 5, "the stalled screen was dropped after its stall"
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
