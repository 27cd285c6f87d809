"""The board's two HTTP servers (the live page, and /healthz and /metrics) against hostile
clients, on the real `callstream board` process over raw sockets: unfinished heads hold
memory and descriptors for the bound only, a head over the limits is a 400 that is
counted rather than logged as an error, the page runs under its content security policy,
and an open page does not hold up the stop."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from common.probes import MAX_CONNECTIONS as PROBES_MAX_CONNECTIONS
from devkit.ports import free_port
from devkit.proc import connections_settle, status_kib
from devkit.topics import delete_topics, new_topics
from tests.support.browser import browsing
from tests.support.processes import start_service, stop_service
from tests.support.rawhttp import exchange, flood_on_a_grown_heap, metric
from tests.support.services import Services

PAGE_MAX_CONNECTIONS = 40
GET = b"GET / HTTP/1.1\r\nHost: t\r\n"


@dataclass
class Board:
    proc: subprocess.Popen[bytes]
    log: Path
    page: tuple[str, int]
    probes: tuple[str, int]

    def address(self, server: str) -> tuple[str, int]:
        return self.page if server == "page" else self.probes

    def metric(self, name: str) -> float:
        return metric(self.probes, name)

    def rss_kib(self) -> int:
        return status_kib(self.proc.pid, "VmRSS")

    def error_lines(self) -> list[str]:
        return [line for line in self.log.read_text().splitlines() if '"level":"error"' in line]


@contextlib.contextmanager
def started_board(services: Services, folder: Path) -> Iterator[Board]:
    suffix, topics = asyncio.run(new_topics(services.kafka))
    page, probes = free_port(), free_port()
    env = {
        "CALLSTREAM_KAFKA_BOOTSTRAP": services.kafka.bootstrap,
        "CALLSTREAM_TOPIC_SUFFIX": suffix,
        "CALLSTREAM_BOARD_GROUP_ID": f"board-{suffix}",
        "CALLSTREAM_BOARD_HTTP_HOST": "127.0.0.1",
        "CALLSTREAM_BOARD_HTTP_PORT": str(page),
        "CALLSTREAM_BOARD_HTTP_MAX_CONNECTIONS": str(PAGE_MAX_CONNECTIONS),
    }
    log = folder / "board.log"
    proc = start_service("board", env, log, metrics_port=probes)
    board = Board(proc, log, ("127.0.0.1", page), ("127.0.0.1", probes))
    try:
        asyncio.run(_until_served(board))
        yield board
    finally:
        stop_service(proc)
        asyncio.run(delete_topics(services.kafka, list(topics.all())))


async def _until_served(board: Board) -> None:
    async with aiohttp.ClientSession() as session, asyncio.timeout(60):
        while True:
            assert board.proc.poll() is None, board.log.read_text()[-3000:]
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(f"http://127.0.0.1:{board.page[1]}/") as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.2)


@pytest.fixture(scope="module")
def board(services: Services, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Board]:
    with started_board(services, tmp_path_factory.mktemp("board-http")) as started:
        yield started


def biggest_unfinished_head(lines: int, field: int) -> bytes:
    pads = b"".join(b"X-Pad-%02d: %s\r\n" % (i, b"a" * (field - 10)) for i in range(lines))
    return GET + pads


@pytest.mark.usefixtures("many_files")
@pytest.mark.parametrize(
    ("server", "bound", "field"),
    [("page", PAGE_MAX_CONNECTIONS, 8190), ("probes", PROBES_MAX_CONNECTIONS, 2048)],
)
def test_heads_that_never_end_hold_memory_and_files_for_the_bound_only(
    services: Services, tmp_path: Path, server: str, bound: int, field: int
) -> None:
    # A board of its own: a heap that an earlier flood grew would take this one's for free.
    with started_board(services, tmp_path) as board:
        address = board.address(server)
        head = biggest_unfinished_head(30, field)
        with flood_on_a_grown_heap(address, head, bound, board.rss_kib) as floods:
            grown = board.rss_kib() - floods.rss_kib
            held = connections_settle(board.proc.pid, address[1], bound)
            status, _ = exchange(address, GET + b"\r\n")
            closed = board.metric("callstream_board_page_connections_closed_at_bound_total")
    assert status in {200, 404}  # answered: the probes have no `/`
    opened = len(floods.second)
    assert held <= bound, f"{held} connections held of {opened} opened"
    # Without the bound the second flood would add twice its 28 more heads a bound: 56
    # bounds' worth. With it the heap grows only to the plateau that the churn of closing
    # the oldest leaves (10 bounds' worth from a fresh start, measured), and no further.
    assert grown < 16 * bound * len(head) // 1024, f"RSS grew by {grown} KiB"
    if server == "page":
        assert closed >= floods.first + len(floods.second) - 2 * PAGE_MAX_CONNECTIONS


@pytest.mark.parametrize("server", ["page", "probes"])
def test_a_head_over_the_limits_is_a_400_and_no_error_line(board: Board, server: str) -> None:
    address = board.address(server)
    counted = "callstream_board_page_malformed_requests_total"
    before_count, before_errors = board.metric(counted), len(board.error_lines())
    too_many = b"".join(b"X-%02d: a\r\n" % i for i in range(40))
    for request in (GET + too_many + b"\r\n", GET + b"Content-Length: x\r\n\r\n"):
        status, _ = exchange(address, request)
        assert status == 400
    assert exchange(address, GET + b"\r\n")[0] in {200, 404}
    assert len(board.error_lines()) == before_errors, board.error_lines()[-1]
    if server == "page":
        assert board.metric(counted) == before_count + 2


LOOKS = """JSON.stringify({
  status: document.getElementById("status").textContent,
  background: getComputedStyle(document.body).backgroundColor,
})"""


async def test_the_page_runs_under_its_content_security_policy(
    board: Board, tmp_path: Path
) -> None:
    url = f"http://127.0.0.1:{board.page[1]}/"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        policy = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy
    assert "'unsafe-inline'" not in policy
    async with browsing(url, tmp_path / "chromium") as page, asyncio.timeout(30):
        while (
            not (looks := json.loads(await page.evaluate(LOOKS) or "{}"))
            .get("status", "")
            .startswith("live")
        ):
            await asyncio.sleep(0.2)
    assert looks["background"] == "rgb(246, 247, 249)", "the page's own style applies"


def test_an_open_page_does_not_hold_up_the_stop(services: Services, tmp_path: Path) -> None:
    with started_board(services, tmp_path) as board:
        code, took, ended = asyncio.run(_stopped_with_a_page_open(board))
    assert code == 0
    assert took < 15, f"the board took {took:.1f} s to stop with a page open"
    assert ended.count(b"data: ") <= 1


async def _stopped_with_a_page_open(board: Board) -> tuple[int, float, bytes]:
    url = f"http://127.0.0.1:{board.page[1]}/events"
    async with aiohttp.ClientSession() as session, session.get(url) as stream:
        await stream.content.readuntil(b"\n\n")
        began = time.monotonic()
        board.proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(board.proc.wait, 60)
        took = time.monotonic() - began
        return code, took, await asyncio.wait_for(stream.content.read(), 5)
