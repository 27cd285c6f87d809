"""Per-tenant token cache: one login at a time, re-login once when the platform asks."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from yunhu.api.client import YunhuClient
from yunhu.api.errors import ApiError

T = TypeVar("T")
log = logging.getLogger(__name__)

TOKEN_LIFETIME = 12 * 3600.0
REFRESH_MARGIN = 15 * 60.0


@dataclass(frozen=True, slots=True)
class Credentials:
    appid: str = field(repr=False)
    accesskey: str = field(repr=False)


class TokenManager:
    """Tokens for one tenant. Refreshes shortly before the 12-hour life ends."""

    def __init__(
        self,
        client: YunhuClient,
        credentials: Credentials,
        *,
        tenant: str = "",
        lifetime: float = TOKEN_LIFETIME,
        refresh_margin: float = REFRESH_MARGIN,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._credentials = credentials
        self._tenant = tenant
        self._lifetime = lifetime
        self._margin = min(refresh_margin, lifetime / 2)
        self._clock = clock
        self._token: str | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()
        self.logins = 0

    def __repr__(self) -> str:
        return f"TokenManager(tenant={self._tenant!r}, logins={self.logins})"

    async def token(self) -> str:
        current = self._valid()
        if current is not None:
            return current
        async with self._lock:  # single flight: the callers queued here reuse one login
            current = self._valid()
            if current is not None:
                return current
            started = self._clock()
            result = await self._client.login(self._credentials.appid, self._credentials.accesskey)
            self.logins += 1
            self._token, self._expires = result.token, started + self._lifetime
            log.info("logged in", extra={"tenant": self._tenant, "logins": self.logins})
            return result.token

    def invalidate(self, token: str) -> None:
        """Forget `token` if it is still the current one (a newer token is kept)."""
        if self._token == token:
            self._token = None

    async def call(self, operation: Callable[[str], Awaitable[T]]) -> T:
        """Run `operation(token)`; when the platform says "log in again", do so once and retry."""
        token = await self.token()
        try:
            return await operation(token)
        except ApiError as err:
            if not err.relogin:
                raise
            log.info("token refused, logging in again", extra={"tenant": self._tenant})
            self.invalidate(token)
        return await operation(await self.token())

    async def close(self) -> None:
        """Log out (best effort): the platform then forgets the token."""
        token, self._token = self._token, None
        if token is not None:
            try:
                await self._client.logout(token)
            except ApiError as err:
                log.warning("logout failed", extra={"tenant": self._tenant, "error": str(err)})

    def _valid(self) -> str | None:
        if self._token is not None and self._clock() < self._expires - self._margin:
            return self._token
        return None
