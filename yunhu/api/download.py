"""Where recording links may lead. The links come from the platform's API answer and are
fetched from inside the deployment's network, so a link is a request the platform makes
us send: only `http`/`https`, only to hosts the tenant allows (its `download_hosts`, or
else the API's host and the CDR's `downloadip`), and loopback, private or link-local
addresses only when the tenants file lists them. Every hop of a redirect is checked
(an aiohttp client middleware), and so is every address a host name resolves to (an
aiohttp resolver), so a name cannot lead to a private address the file does not list.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from yunhu.api.errors import LinkRefusedError
from yunhu.tenants import Tenant

SCHEMES = frozenset({"http", "https"})


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def _public(host: str) -> bool:
    """False for an address that is loopback, private, link-local or otherwise not global."""
    address = _address(host)
    return address is None or address.is_global


@dataclass(frozen=True, slots=True)
class DownloadPolicy:
    allowed: frozenset[str]  # host names and addresses a link may name
    listed: frozenset[str]  # of those, the ones the tenants file names itself

    @classmethod
    def for_tenant(cls, tenant: Tenant, downloadip: str = "") -> DownloadPolicy:
        listed = frozenset(h.lower() for h in tenant.download_hosts)
        if listed:
            return cls(listed, listed)
        defaults = {URL(tenant.api_url).host or "", downloadip}
        return cls(frozenset(h.lower() for h in defaults if h), frozenset())

    def check(self, url: URL) -> None:
        host = (url.host or "").lower()
        if url.scheme not in SCHEMES:
            raise LinkRefusedError(f"link scheme {url.scheme!r} is not http or https")
        if host not in self.allowed:
            raise LinkRefusedError(f"link host {host!r} is not one the tenant allows")
        if not _public(host) and host not in self.listed:
            raise LinkRefusedError(f"link address {host} is not public and not listed")

    async def middleware(
        self, request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
    ) -> aiohttp.ClientResponse:
        """Runs for the first request and for every redirect aiohttp follows."""
        self.check(request.url)
        return await handler(request)


class GuardedResolver(AbstractResolver):
    """Resolves as aiohttp does, keeping only public addresses and those listed."""

    def __init__(self, listed: Iterable[str], inner: AbstractResolver | None = None) -> None:
        self._listed = frozenset(h.lower() for h in listed)
        self._inner = inner or aiohttp.DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        if host.lower() in self._listed:  # a name the file lists: wherever it points
            return found
        kept = [r for r in found if _public(r["host"]) or r["host"].lower() in self._listed]
        if not kept:
            raise LinkRefusedError(f"{host} resolves only to addresses that are not allowed")
        return kept

    async def close(self) -> None:
        await self._inner.close()
