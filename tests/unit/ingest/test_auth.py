from __future__ import annotations

import pytest

from ingest.auth import (
    FORBIDDEN,
    IP_NOT_ALLOWED,
    MISSING_KEY,
    Authenticator,
    ForwardedError,
    SourceResolver,
)
from yunhu.tenants import parse_tenants

TENANTS = parse_tenants(
    """
[[tenant]]
companycode = "9024"
callback_key = "key-9024"
allow_ips = ["10.1.0.0/16", "127.0.0.1/32"]

[[tenant]]
companycode = "7001"
callback_key = "key-7001"
"""
)


def test_the_right_key_from_an_allowed_address_passes() -> None:
    auth = Authenticator(TENANTS)
    assert auth.check("9024", "key-9024", "10.1.2.3") is None
    assert auth.check("7001", "key-7001", "203.0.113.9") is None, "no allow-list: any address"


def test_missing_wrong_and_unknown_are_refused_alike() -> None:
    auth = Authenticator(TENANTS)
    assert auth.check("9024", None, "127.0.0.1") is MISSING_KEY
    assert auth.check("9024", "key-7001", "127.0.0.1") is FORBIDDEN
    assert auth.check("1234", "key-9024", "127.0.0.1") is FORBIDDEN
    assert MISSING_KEY.status == 401
    assert FORBIDDEN.status == 403


def test_an_address_outside_the_allow_list_is_refused() -> None:
    auth = Authenticator(TENANTS)
    assert auth.check("9024", "key-9024", "10.2.0.1") is IP_NOT_ALLOWED
    assert auth.check("9024", "key-9024", "not-an-address") is IP_NOT_ALLOWED
    assert auth.check("9024", "key-9024", "10.1.0.9") is None


def test_forwarded_for_counts_only_behind_a_trusted_proxy() -> None:
    untrusting = SourceResolver([])
    assert untrusting.resolve("10.9.9.9", ["1.2.3.4"]) == "10.9.9.9"
    trusting = SourceResolver(["10.9.0.0/16"])
    assert trusting.resolve("10.9.9.9", ["1.2.3.4"]) == "1.2.3.4"
    assert trusting.resolve("10.9.9.9", ["6.6.6.6, 1.2.3.4, 10.9.1.1"]) == "1.2.3.4"
    assert trusting.resolve("8.8.8.8", ["1.2.3.4"]) == "8.8.8.8", "an untrusted peer cannot spoof"
    assert trusting.resolve("8.8.8.8", ["garbage"]) == "8.8.8.8", "nor be refused for it"
    assert trusting.resolve("10.9.9.9", ["10.9.1.1"]) == "10.9.1.1", "all trusted: the first"


def test_every_forwarded_for_line_counts_in_order() -> None:
    trusting = SourceResolver(["10.9.0.0/16"])
    # A client's own line first, then the proxy's appended line: the proxy's counts.
    assert trusting.resolve("10.9.9.9", ["10.9.9.9", "203.0.113.7"]) == "203.0.113.7"
    assert trusting.resolve("10.9.9.9", ["1.1.1.1, 2.2.2.2", "10.9.0.1"]) == "2.2.2.2"


@pytest.mark.parametrize(
    "lines",
    [[""], ["", "1.2.3.4"], ["1.2.3.4,"], ["1.2.3.4:80"], ["unknown"], ["1.2.3.4\u00e9"]],
)
def test_a_malformed_forwarded_for_from_a_trusted_proxy_is_refused(lines: list[str]) -> None:
    with pytest.raises(ForwardedError):
        SourceResolver(["10.9.0.0/16"]).resolve("10.9.9.9", lines)
