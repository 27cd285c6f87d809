from __future__ import annotations

import json
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from devkit.sim import sim_tenants
from yunhu.sim.poster import Poster, TrafficSettings, generate

TZ = ZoneInfo("Asia/Shanghai")


async def _post_calls(tmp_path: Path, malformed: float) -> tuple[list[bytes], list[bytes]]:
    received: list[bytes] = []

    async def receiver(request: web.Request) -> web.Response:
        body = await request.read()
        received.append(body)
        try:
            json.loads(body)
        except ValueError:
            return web.Response(status=400)
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/callbacks/{code}/{kind}", receiver)
    log = tmp_path / "sent.ndjson"
    async with TestServer(app) as server, aiohttp.ClientSession() as session:
        settings = TrafficSettings(
            str(server.make_url("/")), rate=1000, calls=40, seed=3, malformed=malformed
        )
        with log.open("ab") as sent:
            await generate(Poster(session, settings, sim_tenants(), sent), TZ)
    return received, log.read_bytes().splitlines()


async def test_malformed_callbacks_are_posted_now_and_then_and_never_logged_as_sent(
    tmp_path: Path,
) -> None:
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    clean, clean_sent = await _post_calls(tmp_path / "a", 0.0)
    faulty, faulty_sent = await _post_calls(tmp_path / "b", 0.5)
    bad = [b for b in faulty if not _is_json(b)]
    assert all(_is_json(b) for b in clean)
    assert 5 <= len(bad) <= 35
    assert len(clean_sent) == len(clean)
    assert len(faulty_sent) == len(faulty) - len(bad), "only what got a 2xx is logged"


def _is_json(body: bytes) -> bool:
    try:
        json.loads(body)
    except ValueError:
        return False
    return True
