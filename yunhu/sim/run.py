"""Run the simulator: serve the API and downloads, and optionally post traffic."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from yunhu.sim.api import Simulator
from yunhu.sim.poster import Poster, TrafficReport, TrafficSettings, generate
from yunhu.sim.settings import SimSettings
from yunhu.sim.traffic import CallPlan
from yunhu.tenants import Tenant

TRAFFIC_DONE = "traffic done:"  # printed once the traffic has ended (a line to wait for)


@contextlib.asynccontextmanager
async def serving(simulator: Simulator) -> AsyncIterator[web.AppRunner]:
    settings = simulator.settings
    runner = web.AppRunner(simulator.app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, settings.host, settings.port).start()
    try:
        yield runner
    finally:
        await runner.cleanup()


def register_recording(simulator: Simulator, plan: CallPlan) -> None:
    filename = plan.recordfilename(simulator.settings.tz)
    if filename:
        simulator.add_recording(filename, plan.companycode, plan.talk)


async def post_traffic(simulator: Simulator, traffic: TrafficSettings) -> TrafficReport:
    tenants = simulator.tenants
    log = traffic.sent_log.open("ab") if traffic.sent_log else None
    try:
        async with aiohttp.ClientSession() as session:
            poster = Poster(session, traffic, tenants, log)
            return await generate(
                poster, simulator.settings.tz, lambda plan: register_recording(simulator, plan)
            )
    finally:
        if log is not None:
            log.close()


async def run(
    settings: SimSettings,
    tenants: dict[str, Tenant],
    traffic: TrafficSettings | None,
    *,
    exit_when_done: bool,
) -> int:
    simulator = Simulator(settings, tenants)
    stop, halt = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, halt.set)  # end the traffic, keep serving
    async with serving(simulator):
        print(f"simulator listening on {settings.base_url}", file=sys.stderr, flush=True)
        if traffic is not None:
            sending = asyncio.create_task(post_traffic(simulator, traffic))
            waits = [asyncio.create_task(stop.wait()), asyncio.create_task(halt.wait())]
            await asyncio.wait({sending, *waits}, return_when=asyncio.FIRST_COMPLETED)
            for waiting in waits:
                waiting.cancel()
            if not sending.done():
                sending.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sending
                if stop.is_set():
                    return 130
                print(TRAFFIC_DONE, "(halted)", flush=True)
            else:
                print(TRAFFIC_DONE, sending.result().summary(), flush=True)
            if exit_when_done:
                return 0
        await stop.wait()
    return 0
