from __future__ import annotations

import asyncio

import pytest

from yunhu.api.envelope import LoginResult
from yunhu.api.errors import ApiError
from yunhu.api.tokens import Credentials, TokenManager

APPID, ACCESSKEY = "appid-secret-value", "accesskey-secret-value"


class FakeClient:
    """Stands in for YunhuClient: counts logins, hands out numbered tokens."""

    def __init__(self, delay: float = 0.0) -> None:
        self.logins = 0
        self.delay = delay

    async def login(self, appid: str, accesskey: str) -> LoginResult:
        assert (appid, accesskey) == (APPID, ACCESSKEY)
        await asyncio.sleep(self.delay)
        self.logins += 1
        return LoginResult(token=f"token-{self.logins}", companycode="9024")

    async def logout(self, token: str) -> None:
        self.logged_out = token


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _manager(client: FakeClient, clock: Clock | None = None) -> TokenManager:
    return TokenManager(
        client,  # type: ignore[arg-type]
        Credentials(APPID, ACCESSKEY),
        tenant="9024",
        lifetime=12 * 3600,
        refresh_margin=600,
        clock=clock or Clock(),
    )


async def test_the_token_is_reused_until_shortly_before_it_expires() -> None:
    client, clock = FakeClient(), Clock()
    tokens = _manager(client, clock)
    assert await tokens.token() == "token-1"
    clock.now += 12 * 3600 - 601
    assert await tokens.token() == "token-1"
    clock.now += 2
    assert await tokens.token() == "token-2"
    assert client.logins == 2


async def test_concurrent_callers_share_one_login() -> None:
    client = FakeClient(delay=0.05)
    tokens = _manager(client)
    got = await asyncio.gather(*(tokens.token() for _ in range(100)))
    assert set(got) == {"token-1"}
    assert client.logins == 1


async def test_log_in_again_once_when_the_platform_asks() -> None:
    client = FakeClient()
    tokens = _manager(client)
    seen: list[str] = []

    async def operation(token: str) -> str:
        seen.append(token)
        if token == "token-1":
            raise ApiError("App.Sip_Cdr.GetRecodeFile", "ret", 600, "token invalid")
        return "link"

    assert await tokens.call(operation) == "link"
    assert seen == ["token-1", "token-2"]
    assert client.logins == 2


async def test_many_refusals_of_one_token_cause_one_new_login() -> None:
    client = FakeClient(delay=0.01)
    tokens = _manager(client)

    async def operation(token: str) -> str:
        await asyncio.sleep(0)
        if token == "token-1":
            raise ApiError("svc", "status", 1010, "extension exception")
        return token

    results = await asyncio.gather(*(tokens.call(operation) for _ in range(50)))
    assert set(results) == {"token-2"}
    assert client.logins == 2


async def test_a_second_refusal_is_raised_not_retried_forever() -> None:
    client = FakeClient()
    tokens = _manager(client)

    async def always_refused(token: str) -> str:
        raise ApiError("svc", "ret", 600)

    with pytest.raises(ApiError) as caught:
        await tokens.call(always_refused)
    assert caught.value.relogin
    assert client.logins == 2


async def test_other_errors_pass_through_without_a_login() -> None:
    client = FakeClient()
    tokens = _manager(client)

    async def denied(token: str) -> str:
        raise ApiError("svc", "ret", 602)

    with pytest.raises(ApiError) as caught:
        await tokens.call(denied)
    assert not caught.value.retriable
    assert client.logins == 1


async def test_secrets_stay_out_of_reprs_and_errors() -> None:
    tokens = _manager(FakeClient())
    token = await tokens.token()
    for text in (
        repr(tokens),
        repr(Credentials(APPID, ACCESSKEY)),
        str(ApiError("svc", "ret", 600)),
    ):
        assert APPID not in text
        assert ACCESSKEY not in text
        assert token not in text
