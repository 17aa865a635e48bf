"""The buyer's address: X-Forwarded-For only from our own proxies."""

from __future__ import annotations

import pytest

from transport.client_ip import client_ip, parse_networks

PROXIES = parse_networks("10.0.0.5, 10.1.0.0/16")


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        ("203.0.113.7", None, "203.0.113.7"),
        # a buyer's own header is ignored: the buyer is not our proxy
        ("203.0.113.7", "1.2.3.4", "203.0.113.7"),
        # behind our proxy: the hop it saw
        ("10.0.0.5", "198.51.100.9", "198.51.100.9"),
        # a spoofed first entry, appended to by our two proxies: the rightmost untrusted hop
        ("10.0.0.5", "1.2.3.4, 198.51.100.9, 10.1.2.3", "198.51.100.9"),
        # our proxy without the header, or with a garbled one: the proxy itself
        ("10.0.0.5", None, "10.0.0.5"),
        ("10.0.0.5", "1.2.3.4, not-an-address", "10.0.0.5"),
    ],
)
def test_the_client_address(peer: str, forwarded: str | None, expected: str) -> None:
    headers = {"x-forwarded-for": forwarded} if forwarded is not None else {}
    assert client_ip(peer, headers, PROXIES) == expected


def test_without_trusted_proxies_the_header_is_never_read() -> None:
    assert client_ip("10.0.0.5", {"x-forwarded-for": "1.2.3.4"}, parse_networks("")) == "10.0.0.5"


def test_a_malformed_proxy_setting_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="QUANYI_TRUSTED_PROXIES"):
        parse_networks("10.0.0.5, proxy.internal")
