"""Tenants: one platform account each, read from a TOML file (`[[tenant]]` tables)."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import msgspec

from yunhu.wire import is_safe_name


class Tenant(msgspec.Struct, frozen=True, kw_only=True):
    companycode: str
    appid: str = msgspec.field(default="")
    accesskey: str = msgspec.field(default="")
    api_url: str = "http://127.0.0.1:8080"
    callback_key: str = ""
    allow_ips: tuple[str, ...] = ()
    # Hosts recording links may point at (names or addresses); empty: the API's host and
    # the CDR's `downloadip`. Loopback, private and link-local addresses only when listed.
    download_hosts: tuple[str, ...] = ()

    def __repr__(self) -> str:  # appid, accesskey and callback_key are secrets
        return f"Tenant(companycode={self.companycode!r}, api_url={self.api_url!r})"

    def networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in self.allow_ips)


class TenantsFile(msgspec.Struct, frozen=True):
    tenant: tuple[Tenant, ...] = ()


class TenantsError(ValueError):
    """The tenants file cannot be used; the message names the file and the problem."""


def parse_tenants(text: bytes | str, source: str = "<tenants>") -> dict[str, Tenant]:
    """Tenants by companycode. Company codes may be written as TOML strings or integers."""
    try:
        raw = msgspec.toml.decode(text)
        if isinstance(raw, dict):
            for entry in raw.get("tenant", ()):
                if isinstance(entry, dict) and isinstance(entry.get("companycode"), int):
                    entry["companycode"] = str(entry["companycode"])
        parsed = msgspec.convert(raw, TenantsFile)
    except (msgspec.DecodeError, msgspec.ValidationError) as err:
        raise TenantsError(f"{source}: {err}") from None
    tenants: dict[str, Tenant] = {}
    for tenant in parsed.tenant:
        if not is_safe_name(tenant.companycode):
            raise TenantsError(
                f"{source}: companycode {tenant.companycode!r} is not letters, digits, '_', '-'"
            )
        if tenant.companycode in tenants:
            raise TenantsError(f"{source}: companycode {tenant.companycode} appears twice")
        try:
            tenant.networks()
        except ValueError as err:
            raise TenantsError(f"{source}: tenant {tenant.companycode}: {err}") from None
        tenants[tenant.companycode] = tenant
    if not tenants:
        raise TenantsError(f"{source}: no [[tenant]] entries")
    return tenants


def load_tenants(path: Path) -> dict[str, Tenant]:
    try:
        text = path.read_bytes()
    except OSError as err:
        raise TenantsError(f"cannot read tenants file {path}: {err.strerror}") from None
    return parse_tenants(text, str(path))
