"""aiohttp client for the platform API: form-data POSTs to one URL, `service` picks the call."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Final, TypeVar
from zoneinfo import ZoneInfo

import aiohttp
import msgspec
from yarl import URL

from yunhu.api.download import DownloadPolicy
from yunhu.api.envelope import LOGIN_RESULT, RECORD_FILE_RESULT, LoginResult, parse_result
from yunhu.api.errors import (
    LinkExpiredError,
    RecordingNotReadyError,
    RecordingTooLargeError,
    TransportError,
)

T = TypeVar("T")

LOGIN: Final = "App.Sip_Auth.Login"
LOGOUT: Final = "App.Sip_Auth.Logout"
GET_RECORD_FILE: Final = "App.Sip_Cdr.GetRecodeFile"
PLATFORM_TZ: Final = ZoneInfo("Asia/Shanghai")

_EXPIRY = re.compile(r"(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})")


class RecordLink(msgspec.Struct, frozen=True, gc=False):
    url: str
    expires_at: datetime | None  # None when the platform's label cannot be read


def parse_expiry(label: str, tz: ZoneInfo) -> datetime | None:
    """`"Expiration time:2020-02-11 17:27:23"` → an aware datetime in the platform's zone."""
    found = _EXPIRY.search(label)
    if found is None:
        return None
    try:
        naive = datetime.fromisoformat(f"{found.group(1)} {found.group(2)}")
    except ValueError:
        return None
    return naive.replace(tzinfo=tz)


class YunhuClient:
    """One platform URL. Handlers get a client built around a shared session."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        api_url: str,
        *,
        timeout: float = 10.0,
        tz: ZoneInfo = PLATFORM_TZ,
    ) -> None:
        self._session = session
        self._url = api_url
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._tz = tz

    async def login(self, appid: str, accesskey: str) -> LoginResult:
        result = await self._call(LOGIN, {"appid": appid, "accesskey": accesskey}, LOGIN_RESULT)
        if result is None or not result.token:
            raise TransportError(f"{LOGIN}: answer carried no token")
        return result

    async def logout(self, token: str) -> None:
        await self._call(LOGOUT, {"token": token}, None)

    async def get_record_file(self, token: str, filename: str) -> RecordLink:
        result = await self._call(
            GET_RECORD_FILE, {"token": token, "filename": filename}, RECORD_FILE_RESULT
        )
        if result is None or not result.downurl:
            raise TransportError(f"{GET_RECORD_FILE}: answer carried no download link")
        return RecordLink(result.downurl, parse_expiry(result.expiredtime, self._tz))

    @contextlib.asynccontextmanager
    async def download(
        self,
        link: RecordLink,
        policy: DownloadPolicy,
        *,
        max_bytes: int,
        max_seconds: float = 300.0,
        chunk: int = 64 << 10,
    ) -> AsyncIterator[AsyncIterator[bytes]]:
        """The recording's bytes, in chunks, from a link (and redirects) `policy` allows;
        RecordingTooLargeError once more than `max_bytes` came."""
        policy.check(URL(link.url))
        try:
            async with self._session.get(
                link.url,
                timeout=aiohttp.ClientTimeout(total=max_seconds, sock_read=30),
                middlewares=(policy.middleware,),
            ) as response:
                if response.status in {403, 410}:
                    raise LinkExpiredError(f"download link expired (HTTP {response.status})")
                if response.status == 404:
                    raise RecordingNotReadyError("recording not available yet (HTTP 404)")
                if response.status != 200:
                    raise TransportError(f"download failed: HTTP {response.status}")
                if (response.content_length or 0) > max_bytes:
                    raise RecordingTooLargeError(
                        f"recording of {response.content_length} bytes is over {max_bytes}"
                    )
                yield _at_most(response.content.iter_chunked(chunk), max_bytes)
        except (TimeoutError, aiohttp.ClientError) as err:
            raise TransportError(f"download failed: {type(err).__name__}") from None

    async def _call(
        self, service: str, fields: dict[str, str], result: msgspec.json.Decoder[T] | None
    ) -> T | None:
        # The platform's examples post with PHP curl and an array: multipart/form-data.
        form = aiohttp.FormData({"service": service, **fields}, default_to_multipart=True)
        try:
            async with self._session.post(self._url, data=form, timeout=self._timeout) as resp:
                if resp.status >= 500:
                    raise TransportError(f"{service}: HTTP {resp.status}")
                body = await resp.read()
        except (TimeoutError, aiohttp.ClientError) as err:
            raise TransportError(f"{service}: {type(err).__name__}") from None
        return parse_result(service, body, result)


async def _at_most(chunks: AsyncIterator[bytes], max_bytes: int) -> AsyncIterator[bytes]:
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > max_bytes:
            raise RecordingTooLargeError(f"recording is over {max_bytes} bytes; stopped there")
        yield chunk
