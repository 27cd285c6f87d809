"""Who may post callbacks: the tenant's `callback_key` (as `?key=`) and its IP allow-list."""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from yunhu.tenants import Tenant

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class Denied:
    status: int
    reason: str


MISSING_KEY: Final = Denied(401, "missing key")
# Unknown tenant and wrong key get the same answer, so tenants cannot be enumerated.
FORBIDDEN: Final = Denied(403, "forbidden")
IP_NOT_ALLOWED: Final = Denied(403, "address not allowed")
_DUMMY_KEY: Final = b"callstream-no-such-tenant-0000000000000000"


class Authenticator:
    def __init__(self, tenants: dict[str, Tenant]) -> None:
        self._keys = {code: t.callback_key.encode() for code, t in tenants.items()}
        self._networks = {code: t.networks() for code, t in tenants.items() if t.allow_ips}
        self._verdicts: dict[tuple[str, str], bool] = {}

    def check(self, companycode: str, key: str | None, source: str) -> Denied | None:
        if not key:
            return MISSING_KEY
        expected = self._keys.get(companycode)
        # Compare even for an unknown tenant, so timing does not tell which tenants exist.
        matches = hmac.compare_digest(key.encode(), expected or _DUMMY_KEY)
        if expected is None or not expected or not matches:
            return FORBIDDEN
        networks = self._networks.get(companycode)
        if networks is not None and not self._allowed(companycode, source, networks):
            return IP_NOT_ALLOWED
        return None

    def _allowed(self, companycode: str, source: str, networks: Sequence[Network]) -> bool:
        key = (companycode, source)
        allowed = self._verdicts.get(key)
        if allowed is None:
            if len(self._verdicts) > 4096:  # bounded: sources are few, but never trust that
                self._verdicts.clear()
            allowed = self._verdicts[key] = _inside(source, networks)
        return allowed


def _inside(source: str, networks: Sequence[Network]) -> bool:
    try:
        address = ipaddress.ip_address(source)
    except ValueError:
        return False
    return any(address in network for network in networks)


class ForwardedError(ValueError):
    """An X-Forwarded-For from a trusted proxy that is not a list of addresses."""


class SourceResolver:
    """The client's address: the peer, or from X-Forwarded-For when the peer is a trusted
    proxy. Every X-Forwarded-For line counts, joined in order; walking from the nearest
    hop back, the first address that is not a trusted proxy's is the client (nginx's
    `real_ip_recursive`). Only a trusted proxy's header is read; a malformed one is refused."""

    def __init__(self, trusted_proxies: Sequence[str]) -> None:
        self._trusted = tuple(ipaddress.ip_network(c, strict=False) for c in trusted_proxies)

    def resolve(self, peer: str | None, forwarded_for: Sequence[str]) -> str:
        peer = peer or ""
        if not self._trusted or not forwarded_for or not _inside(peer, self._trusted):
            return peer
        hops = [_address(hop) for line in forwarded_for for hop in line.split(",")]
        for hop in reversed(hops):
            if not _inside(hop, self._trusted):
                return hop
        return hops[0]


def _address(hop: str) -> str:
    text = hop.strip(" \t")
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise ForwardedError(f"X-Forwarded-For holds {text[:60]!r}, not an address") from None
