from __future__ import annotations

import socket

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from yunhu.api import DownloadPolicy, GuardedResolver, LinkRefusedError
from yunhu.tenants import Tenant


def _tenant(**fields: object) -> Tenant:
    return Tenant(companycode="9024", api_url="https://api.example.com:8443", **fields)  # type: ignore[arg-type]


def test_by_default_the_apis_host_and_the_cdrs_downloadip_are_allowed() -> None:
    policy = DownloadPolicy.for_tenant(_tenant(), downloadip="93.184.216.34")
    policy.check(URL("https://api.example.com/rec/1.wav"))
    policy.check(URL("http://93.184.216.34:8080/rec/1.wav"))
    for url in ["http://other.example.com/x", "http://93.184.216.35/x", "ftp://api.example.com/x"]:
        with pytest.raises(LinkRefusedError):
            policy.check(URL(url))


@pytest.mark.parametrize("address", ["127.0.0.1", "10.1.2.3", "169.254.169.254", "[::1]"])
def test_a_private_downloadip_is_not_allowed_unless_listed(address: str) -> None:
    policy = DownloadPolicy.for_tenant(_tenant(), downloadip=address.strip("[]"))
    with pytest.raises(LinkRefusedError, match="not public"):
        policy.check(URL(f"http://{address}/x"))
    listed = DownloadPolicy.for_tenant(_tenant(download_hosts=(address.strip("[]"),)))
    listed.check(URL(f"http://{address}/x"))


def test_listed_hosts_replace_the_defaults() -> None:
    policy = DownloadPolicy.for_tenant(_tenant(download_hosts=("Records.Example.com",)), "1.2.3.4")
    policy.check(URL("https://records.example.com/x"))
    with pytest.raises(LinkRefusedError):
        policy.check(URL("https://api.example.com/x"))
    with pytest.raises(LinkRefusedError):
        policy.check(URL("http://1.2.3.4/x"))


class FixedResolver(AbstractResolver):
    def __init__(self, *addresses: str) -> None:
        self.addresses = addresses

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(hostname=host, host=a, port=port, family=family, proto=0, flags=0)
            for a in self.addresses
        ]

    async def close(self) -> None:
        pass


async def test_the_resolver_drops_private_addresses_a_name_points_at() -> None:
    resolver = GuardedResolver([], FixedResolver("10.0.0.5", "93.184.216.34"))
    assert [r["host"] for r in await resolver.resolve("cdn.example.com")] == ["93.184.216.34"]
    only_private = GuardedResolver([], FixedResolver("127.0.0.1"))
    with pytest.raises(LinkRefusedError):
        await only_private.resolve("rebinding.example.com")
    listed = GuardedResolver(["sim"], FixedResolver("172.18.0.5"))
    assert [r["host"] for r in await listed.resolve("sim")] == ["172.18.0.5"]
