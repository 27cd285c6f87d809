"""The simulated platform API (form-data POST to `/`, dispatching on `service`) and the
recording download server, as one aiohttp application."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Final

import msgspec
from aiohttp import web

from yunhu.sim.audio import iter_wav, wav_size
from yunhu.sim.settings import SimSettings
from yunhu.sim.state import SimState
from yunhu.tenants import Tenant

_ENCODER: Final = msgspec.json.Encoder()
RET_MESSAGES: Final = {
    400: "Illegal request: invalid parameter",
    500: "Server Error",
    600: "The token is invalid, please log in again to verify",
    601: "appid is not authorized",
    602: "appid authorization has expired",
    603: "Module not licensed",
    604: "IP is not authorized",
}

Handler = Callable[["Simulator", dict[str, str], int], Awaitable[web.Response]]


class Simulator:
    """State and behaviour of the simulated platform; `app` serves it."""

    def __init__(self, settings: SimSettings, tenants: dict[str, Tenant]) -> None:
        self.settings = settings
        self.tenants = tenants
        self.by_appid = {t.appid: t for t in tenants.values() if t.appid}
        self.state = SimState()
        self.rng = random.Random(settings.seed)  # noqa: S311 - simulation, not security
        self.app = web.Application(client_max_size=1024 * 1024)
        self.app.router.add_post("/", self.api)
        self.app.router.add_get("/recordings/{link}", self.download)

    # -- helpers for the traffic generator and tests --------------------------------

    def add_recording(self, filename: str, companycode: str, seconds: int) -> None:
        delay = self.settings.faults.not_ready_seconds
        self.state.add_recording(filename, companycode, seconds, delay)

    # -- the API ------------------------------------------------------------------

    async def api(self, request: web.Request) -> web.Response:
        reqtime = int(time.time())
        form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
        service = form.get("service", "").strip()  # the platform's own example has a space
        self.state.requests[service] += 1
        faults = self.settings.faults
        if self._chance(faults.slow):
            await asyncio.sleep(faults.slow_seconds)
        if self._chance(faults.ret500):
            return _ret(500)
        handler = SERVICES.get(service)
        if handler is None:
            return _ret(400, "Illegal request: unknown service")
        return await handler(self, form, reqtime)

    def _chance(self, probability: float) -> bool:
        return probability > 0 and self.rng.random() < probability

    def _token_tenant(self, form: dict[str, str]) -> str | None:
        tenant = self.state.tenant_of(form.get("token", ""))
        if tenant is not None and self._chance(self.settings.faults.token_invalid):
            return None
        return tenant

    async def login(self, form: dict[str, str], reqtime: int) -> web.Response:
        tenant = self.by_appid.get(form.get("appid", ""))
        if tenant is None:
            return _ret(601)
        denial = self.settings.denials.get(tenant.companycode)
        if denial is not None:
            return _ret(denial)
        if not form.get("accesskey") or form.get("accesskey") != tenant.accesskey:
            return _failed(reqtime, "Authorization failed", "1003", "Authorization failed")
        token = self.state.issue_token(tenant.companycode, self.settings.token_ttl)
        result = {
            "companycode": tenant.companycode,
            "companyname": f"Company {tenant.companycode}",
            "token": token,
            "authtime": datetime.now(self.settings.tz).strftime("%Y-%m-%d %H:%M:%S"),
            "authmodel": "",
        }
        return _ok(reqtime, "Authorization successful", result)

    async def logout(self, form: dict[str, str], reqtime: int) -> web.Response:
        if not self.state.revoke(form.get("token", "")):
            return _ret(600)
        return _ok(reqtime, "logout successful")

    async def get_record_file(self, form: dict[str, str], reqtime: int) -> web.Response:
        tenant = self._token_tenant(form)
        if tenant is None:
            return _ret(600)
        if self._chance(self.settings.faults.status1003):
            return _failed(reqtime, "get fail", "1003", "operation failed")
        recording = self.state.recordings.get(form.get("filename", ""))
        if recording is None or recording.companycode != tenant:
            return _ret(400, "Illegal request: recording file does not exist")
        ttl = self.settings.link_ttl
        if self._chance(self.settings.faults.expired_link):
            ttl = -1.0
        link_id = self.state.issue_link(recording.filename, ttl)
        expires = datetime.fromtimestamp(self.state.links[link_id].expires_wall, self.settings.tz)
        base = self.settings.faults.link_base or self.settings.base_url
        result = {
            "downurl": f"{base}/recordings/{link_id}",
            "expiredtime": f"Expiration time:{expires:%Y-%m-%d %H:%M:%S}",
        }
        return _ok(reqtime, "get success", result)

    # -- downloads ----------------------------------------------------------------

    async def download(self, request: web.Request) -> web.StreamResponse:
        self.state.downloads += 1
        link = self.state.links.get(request.match_info["link"])
        now = self.state.clock()
        if link is None or now >= link.expires_at:
            raise web.HTTPGone(text="download link expired or unknown")
        recording = self.state.recordings[link.filename]
        if now < recording.ready_at:
            raise web.HTTPNotFound(text="recording not ready")
        faults = self.settings.faults
        if faults.redirect_to:
            raise web.HTTPFound(f"{faults.redirect_to.rstrip('/')}{request.path}")
        if faults.endless:
            return await _endless(request)
        response = web.StreamResponse(
            headers={
                "Content-Type": "audio/wav",
                "Content-Length": str(wav_size(recording.seconds)),
            }
        )
        await response.prepare(request)
        for chunk in iter_wav(recording.filename, recording.seconds):
            await response.write(chunk)
        await response.write_eof()
        return response


async def _endless(request: web.Request) -> web.StreamResponse:
    """A download that never ends, until the client hangs up."""
    response = web.StreamResponse(headers={"Content-Type": "audio/wav"})
    await response.prepare(request)
    chunk = bytes(64 << 10)
    while True:
        await response.write(chunk)


SERVICES: Final[dict[str, Handler]] = {
    "App.Sip_Auth.Login": Simulator.login,
    "App.Sip_Auth.Logout": Simulator.logout,
    "App.Sip_Cdr.GetRecodeFile": Simulator.get_record_file,
}


def _json(payload: dict[str, Any]) -> web.Response:
    return web.Response(body=_ENCODER.encode(payload), content_type="application/json")


def _ret(ret: int, msg: str | None = None) -> web.Response:
    return _json({"ret": ret, "data": [], "msg": msg or RET_MESSAGES.get(ret, "error")})


def _ok(reqtime: int, desc: str, result: dict[str, Any] | None = None) -> web.Response:
    data: dict[str, Any] = {"status": 0, "desc": desc}
    if result is not None:
        data["result"] = result
    data.update(reqtime=reqtime, rsptime=int(time.time()))
    return _json({"ret": 200, "data": data, "msg": ""})


def _failed(reqtime: int, desc: str, code: str, codemsg: str) -> web.Response:
    data = {
        "status": 1,
        "desc": desc,
        "errors": {"code": code, "codemsg": codemsg},
        "reqtime": reqtime,
        "rsptime": int(time.time()),
    }
    return _json({"ret": 200, "data": data, "msg": ""})
