"""Headless Chromium driven over the DevTools protocol (a websocket): open a page, evaluate
JavaScript in it, take a screenshot. For the board's browser test."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

from devkit.ports import free_port


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise AssertionError("no Chromium: apt-get install chromium (.ci/run installs it)")


class Page:
    def __init__(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        self.socket = socket
        self.ids = itertools.count(1)

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        ident = next(self.ids)
        await self.socket.send_json({"id": ident, "method": method, "params": params})
        async with asyncio.timeout(30):
            while True:
                message = await self.socket.receive_json()
                if message.get("id") == ident:
                    assert "error" not in message, message
                    result: dict[str, Any] = message["result"]
                    return result

    async def navigate(self, url: str) -> None:
        """Opens `url` and returns once its load event has fired."""
        await self.call("Page.navigate", url=url)
        async with asyncio.timeout(30):
            while (await self.socket.receive_json()).get("method") != "Page.loadEventFired":
                pass

    async def evaluate(self, expression: str) -> Any:
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    async def screenshot(self, path: Path) -> None:
        shot = await self.call("Page.captureScreenshot", format="png")
        path.write_bytes(base64.b64decode(shot["data"]))


@contextlib.asynccontextmanager
async def browsing(url: str, profile: Path) -> AsyncIterator[Page]:
    """`url` open in a headless Chromium of its own."""
    port = free_port()
    proc = subprocess.Popen(
        [
            chromium(),
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            f"--remote-debugging-port={port}",
            f"--user-data-dir={profile}",
            "--window-size=1280,900",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        async with aiohttp.ClientSession() as session:
            target = await _new_target(session, port)
            async with session.ws_connect(target, max_msg_size=0) as socket:
                page = Page(socket)
                await page.call("Page.enable")
                await page.navigate(url)
                yield page
    finally:
        proc.terminate()
        proc.wait(30)


async def _new_target(session: aiohttp.ClientSession, port: int) -> str:
    async with asyncio.timeout(30):
        while True:
            with contextlib.suppress(aiohttp.ClientError):
                async with session.put(f"http://127.0.0.1:{port}/json/new?about:blank") as response:
                    if response.status == 200:
                        found: str = (await response.json())["webSocketDebuggerUrl"]
                        return found
            await asyncio.sleep(0.2)
