"""The API client and token manager against the simulator on a real port."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import subprocess
from collections.abc import AsyncIterator

import aiohttp
import msgspec
import pytest

from devkit.sim import running_simulator, sim_tenants
from yunhu.api import (
    ApiError,
    Credentials,
    DownloadPolicy,
    LinkExpiredError,
    RecordingNotReadyError,
    TokenManager,
    YunhuClient,
)
from yunhu.sim.api import Simulator
from yunhu.sim.audio import wav_bytes
from yunhu.sim.settings import Faults, SimSettings

TENANT = sim_tenants()["9024"]
LOOPBACK = DownloadPolicy(frozenset({"127.0.0.1"}), frozenset({"127.0.0.1"}))
FILENAME = "20261126/9024/0b0c6f2e-cafe-11ea-a849-cf6e45e88543.wav"


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


def _tokens(simulator: Simulator, session: aiohttp.ClientSession) -> TokenManager:
    client = YunhuClient(session, simulator.settings.base_url, timeout=5)
    return TokenManager(client, Credentials(TENANT.appid, TENANT.accesskey), tenant="9024")


async def test_login_once_and_reuse_the_token(session: aiohttp.ClientSession) -> None:
    async with running_simulator() as sim:
        sim.add_recording(FILENAME, "9024", 3)
        tokens = _tokens(sim, session)
        client = YunhuClient(session, sim.settings.base_url)
        for _ in range(5):
            link = await tokens.call(lambda t: client.get_record_file(t, FILENAME))
            assert link.url.startswith(sim.settings.base_url)
        assert sim.state.logins["9024"] == 1
        assert sim.state.requests["App.Sip_Cdr.GetRecodeFile"] == 5


async def test_a_hundred_concurrent_callers_cause_exactly_one_login(
    session: aiohttp.ClientSession,
) -> None:
    async with running_simulator() as sim:
        sim.add_recording(FILENAME, "9024", 2)
        tokens = _tokens(sim, session)
        client = YunhuClient(session, sim.settings.base_url)
        links = await asyncio.gather(
            *(tokens.call(lambda t: client.get_record_file(t, FILENAME)) for _ in range(100))
        )
        assert len({link.url for link in links}) == 100
        assert sim.state.logins["9024"] == 1
        assert sim.state.requests["App.Sip_Auth.Login"] == 1


async def test_an_invalidated_token_is_healed_by_one_login(session: aiohttp.ClientSession) -> None:
    async with running_simulator() as sim:
        sim.add_recording(FILENAME, "9024", 2)
        tokens = _tokens(sim, session)
        client = YunhuClient(session, sim.settings.base_url)
        await tokens.call(lambda t: client.get_record_file(t, FILENAME))
        sim.state.tokens.clear()  # the platform forgets every token: ret 600 from now on
        link = await tokens.call(lambda t: client.get_record_file(t, FILENAME))
        assert link.url
        assert sim.state.logins["9024"] == 2


async def test_an_injected_600_is_invisible_to_the_caller(session: aiohttp.ClientSession) -> None:
    settings = SimSettings(seed=3, faults=Faults(token_invalid=0.3))
    async with running_simulator(settings) as sim:
        sim.add_recording(FILENAME, "9024", 2)
        tokens = _tokens(sim, session)
        client = YunhuClient(session, sim.settings.base_url)
        refusals: list[ApiError] = []
        for _ in range(30):
            try:
                await tokens.call(lambda t: client.get_record_file(t, FILENAME))
            except ApiError as err:  # two 600s in a row: rare, and then it surfaces
                refusals.append(err)
        logins = sim.state.logins["9024"]
        assert logins > 3, "the fault was injected"
        assert len(refusals) <= 3
        assert all(err.relogin for err in refusals)
        assert sim.state.requests["App.Sip_Cdr.GetRecodeFile"] == 30 + logins - 1


@pytest.mark.parametrize("ret", [601, 602, 603, 604])
async def test_account_refusals_are_typed_and_not_retriable(
    session: aiohttp.ClientSession, ret: int
) -> None:
    async with running_simulator(SimSettings(denials={"9024": ret})) as sim:
        with pytest.raises(ApiError) as caught:
            await _tokens(sim, session).token()
        assert (caught.value.code, caught.value.retriable, caught.value.relogin) == (
            ret,
            False,
            False,
        )
        assert TENANT.appid not in str(caught.value)


async def test_the_download_is_the_simulators_file_byte_for_byte(
    session: aiohttp.ClientSession,
) -> None:
    async with running_simulator() as sim:
        sim.add_recording(FILENAME, "9024", 37)
        tokens = _tokens(sim, session)
        client = YunhuClient(session, sim.settings.base_url)
        link = await tokens.call(lambda t: client.get_record_file(t, FILENAME))
        assert link.expires_at is not None
        digest, size = hashlib.sha256(), 0
        async with client.download(link, LOOPBACK, max_bytes=1 << 30) as chunks:
            async for chunk in chunks:
                digest.update(chunk)
                size += len(chunk)
        expected = wav_bytes(FILENAME, 37)
        assert size == len(expected) == 44 + 37 * 16000
        assert digest.hexdigest() == hashlib.sha256(expected).hexdigest()


async def test_an_expired_link_fails_clearly(session: aiohttp.ClientSession) -> None:
    async with running_simulator(SimSettings(link_ttl=0.2)) as sim:
        sim.add_recording(FILENAME, "9024", 2)
        tokens = _tokens(sim, session)
        client = YunhuClient(session, sim.settings.base_url)
        link = await tokens.call(lambda t: client.get_record_file(t, FILENAME))
        await asyncio.sleep(0.3)
        with pytest.raises(LinkExpiredError, match="expired") as caught:
            async with client.download(link, LOOPBACK, max_bytes=1 << 30):
                pass
        assert caught.value.retriable


async def test_a_recording_not_ready_yet_is_retriable(session: aiohttp.ClientSession) -> None:
    async with running_simulator(SimSettings(faults=Faults(not_ready_seconds=60))) as sim:
        sim.add_recording(FILENAME, "9024", 2)
        tokens = _tokens(sim, session)
        client = YunhuClient(session, sim.settings.base_url)
        link = await tokens.call(lambda t: client.get_record_file(t, FILENAME))
        with pytest.raises(RecordingNotReadyError) as caught:
            async with client.download(link, LOOPBACK, max_bytes=1 << 30):
                pass
        assert caught.value.retriable


async def test_logout_clears_the_token(session: aiohttp.ClientSession) -> None:
    async with running_simulator() as sim:
        tokens = _tokens(sim, session)
        await tokens.token()
        assert len(sim.state.tokens) == 1
        await tokens.close()
        assert sim.state.tokens == {}


async def test_plain_curl_gets_the_documented_envelope() -> None:
    curl = shutil.which("curl")
    assert curl is not None, "curl is needed for this test"
    async with running_simulator() as sim:
        argv = [
            curl,
            "-s",
            "-F",
            "service=App.Sip_Auth.Login",
            "-F",
            f"appid={TENANT.appid}",
            "-F",
            f"accesskey={TENANT.accesskey}",
            sim.settings.base_url,
        ]
        done = await asyncio.to_thread(subprocess.run, argv, capture_output=True, check=True)
    answer = msgspec.json.decode(done.stdout)
    assert answer["ret"] == 200
    assert answer["msg"] == ""
    data = answer["data"]
    assert (data["status"], data["desc"]) == (0, "Authorization successful")
    assert set(data["result"]) == {"companycode", "companyname", "token", "authtime", "authmodel"}
    assert data["result"]["companycode"] == "9024"
    assert isinstance(data["reqtime"], int)
    assert isinstance(data["rsptime"], int)
