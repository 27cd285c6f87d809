"""The simulator's traffic, posted to a minimal receiver on a real port."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
from aiohttp import web

from devkit.ports import free_port
from devkit.sim import TENANTS_TOML, running_simulator, sim_tenants
from yunhu.callbacks import Cdr, decode_cdr
from yunhu.sim.poster import EXAMPLES, TrafficSettings
from yunhu.sim.run import post_traffic
from yunhu.sim.sentlog import read_sent_log


@dataclass
class Receiver:
    url: str
    received: list[tuple[str, str, str, bytes]] = field(default_factory=list)
    fail_every: int = 0  # answer 503 to every n-th request


@contextlib.asynccontextmanager
async def minimal_receiver(fail_every: int = 0) -> AsyncIterator[Receiver]:
    port = free_port()
    receiver = Receiver(f"http://127.0.0.1:{port}", fail_every=fail_every)

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        receiver.received.append(
            (request.match_info["code"], request.match_info["kind"], request.query["key"], body)
        )
        if receiver.fail_every and len(receiver.received) % receiver.fail_every == 0:
            return web.Response(status=503)
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/callbacks/{code}/{kind}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield receiver
    finally:
        await runner.cleanup()


async def test_every_call_arrives_in_order_and_the_sent_log_proves_it(tmp_path: Path) -> None:
    log = tmp_path / "sent.ndjson"
    tenants = sim_tenants()
    async with running_simulator() as sim, minimal_receiver() as receiver:
        report = await post_traffic(
            sim, TrafficSettings(receiver.url, rate=200, calls=60, seed=11, sent_log=log)
        )
    assert report.calls == 60
    assert report.accepted == len(receiver.received)
    for code, _kind, key, _body in receiver.received:
        assert key == tenants[code].callback_key
    assert {code for code, *_ in receiver.received} == set(tenants), "several tenants"

    by_call: dict[str, list[str]] = {}
    cdrs: list[Cdr] = []
    for _code, kind, _key, body in receiver.received:
        uuid = msgspec.json.decode(body)["uuid"]
        by_call.setdefault(uuid, []).append(kind)
        if kind == "cdr":
            cdr = decode_cdr(body)
            assert isinstance(cdr, Cdr)
            cdrs.append(cdr)
    assert len(by_call) == 60
    assert all(kinds[-1] == "cdr" and kinds.count("cdr") == 1 for kinds in by_call.values())

    logged = read_sent_log(log)
    assert sorted((e.kind, e.uuid, e.sha256) for e in logged) == sorted(
        (kind, msgspec.json.decode(body)["uuid"], hashlib.sha256(body).hexdigest())
        for _c, kind, _k, body in receiver.received
    )
    answered = {c.recordfilename for c in cdrs if c.recordfilename}
    assert answered
    assert answered == set(sim.state.recordings), "answered calls have downloadable recordings"


async def test_only_callbacks_answered_2xx_are_logged(tmp_path: Path) -> None:
    log = tmp_path / "sent.ndjson"
    async with running_simulator() as sim, minimal_receiver(fail_every=4) as receiver:
        report = await post_traffic(
            sim, TrafficSettings(receiver.url, rate=200, calls=20, seed=5, sent_log=log)
        )
    failed = sum(n for (_, status), n in report.statuses.items() if status == "503")
    assert failed == len(receiver.received) // 4
    assert len(read_sent_log(log)) == len(receiver.received) - failed == report.accepted


async def test_verbatim_mode_posts_the_documents_examples_byte_for_byte() -> None:
    async with running_simulator() as sim, minimal_receiver() as receiver:
        await post_traffic(sim, TrafficSettings(receiver.url, verbatim=True))
    bodies = {kind: body for _c, kind, _k, body in receiver.received}
    assert bodies == {
        "callstate": (EXAMPLES / "callstate.json").read_bytes(),
        "cdr": (EXAMPLES / "cdr.json").read_bytes(),
    }


async def test_the_command_line_sends_traffic_and_prints_what_it_sent(tmp_path: Path) -> None:
    tenants = tmp_path / "tenants.toml"
    tenants.write_text(TENANTS_TOML)
    log = tmp_path / "sent.ndjson"
    async with minimal_receiver() as receiver:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "callstream",
            "sim",
            "--tenants",
            str(tenants),
            "--port",
            str(free_port()),
            "--target",
            receiver.url,
            "--calls",
            "12",
            "--rate",
            "50",
            "--seed",
            "9",
            "--sent-log",
            str(log),
            "--exit-when-done",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    text = out.decode()
    assert "for 12 calls" in text
    assert "cdr         200  12" in text
    assert len(read_sent_log(log)) == len(receiver.received)
