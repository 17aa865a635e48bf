"""The buyer's address: the connection's peer, or X-Forwarded-For behind a trusted proxy.

A header anyone can send is believed only when the peer that sent it is one of our own
proxies; otherwise a bot would name a fresh address per request and walk past every
per-IP rule.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(value: str) -> tuple[Network, ...]:
    """`10.0.0.1, 10.1.0.0/16` as networks; a malformed entry is a configuration error."""
    networks = []
    for entry in value.split(","):
        entry = entry.strip()
        if entry:
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                raise ValueError(f"QUANYI_TRUSTED_PROXIES: {entry!r} is not an IP address or network") from None
    return tuple(networks)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def _trusted(address: ipaddress.IPv4Address | ipaddress.IPv6Address | None, proxies: Sequence[Network]) -> bool:
    return address is not None and any(address in network for network in proxies)


def client_ip(peer: str | None, headers: Mapping[str, str], proxies: Sequence[Network]) -> str | None:
    """Walk X-Forwarded-For from the right past our own proxies; the first other hop is the client."""
    if peer is None or not proxies or not _trusted(_address(peer), proxies):
        return peer
    forwarded = headers.get("x-forwarded-for")
    if not forwarded:
        return peer
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            return peer  # a garbled chain: trust only what we saw ourselves
        if not _trusted(address, proxies):
            return str(address)
    return str(_address(hops[0])) if hops else peer
