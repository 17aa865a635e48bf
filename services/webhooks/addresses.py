"""Where a webhook may be sent: no server-side request forgery.

A receiver's URL comes from outside, and the gateway sits beside the database, Redis and
cloud metadata services. So only http(s) URLs whose host is a public address, or a name
all of whose addresses are public, are accepted: not loopback, private, link-local,
multicast, reserved or unspecified ones, nor those hidden in an IPv6 form (IPv4-mapped,
6to4, Teredo, NAT64). Spellings that mean an address to some resolver but not plainly
(`2130706433`, `0177.0.0.1`, `0x7f.1`, `127.1`) are refused outright, and so is `localhost`
in any case with or without its trailing dot; an IDN is checked as the name it resolves.

The check runs when an endpoint is registered and again at each send, on the addresses
the name resolves to then (a name can be re-pointed after it was checked: DNS
rebinding); the request then goes to the address that was checked (`pinned`), never to
a second resolution of the name. `QUANYI_WEBHOOK_ALLOW_PRIVATE=1` lifts the rule (tests, demos).
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]

MAX_URL_LENGTH = 2048
# Hosts that only look like names: digits, dots and hex. inet_aton() reads these as addresses.
_NUMERIC = re.compile(r"[0-9a-fx.]+", re.IGNORECASE)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class Refused(ValueError):
    """The URL may not receive webhooks; the message says why (never echoing a resolved address)."""


@dataclass(frozen=True, slots=True)
class Target:
    url: httpx.URL
    host: str  # the name as registered, IDNA-encoded
    port: int


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def parse(url: str) -> Target:
    """The URL's parts, or Refused for one that is not an absolute http(s) URL."""
    if len(url) > MAX_URL_LENGTH:
        raise Refused(f"a URL is at most {MAX_URL_LENGTH} characters")
    try:
        parsed = httpx.URL(url.strip())
    except (httpx.InvalidURL, ValueError, UnicodeError):
        raise Refused("not a valid URL") from None
    if parsed.scheme not in {"http", "https"}:
        raise Refused("only http and https URLs receive webhooks")
    if not parsed.host:
        raise Refused("the URL has no host")
    if parsed.userinfo:
        raise Refused("credentials do not belong in the URL; verify the signature instead")
    if parsed.fragment:
        raise Refused("a URL with a fragment")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    return Target(parsed, parsed.raw_host.decode("ascii").lower(), port)


def refusal(address: Address) -> str | None:
    """Why an address may not receive webhooks; None for a public one."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or _sixtofour(address) or _teredo(address) or _nat64(address)
        if embedded is not None:
            return refusal(embedded)
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_private:
        return "a private address"
    if address.is_reserved or not address.is_global:
        return "a reserved address"
    return None


def literal(host: str) -> Address | None:
    """The address a host names by itself, if any; Refused for an unusual spelling of one."""
    bare = host.strip("[]")
    try:
        return ipaddress.ip_address(bare)
    except ValueError:
        pass
    if _NUMERIC.fullmatch(bare.rstrip(".")):
        try:  # the forms the C resolver accepts: 2130706433, 0177.0.0.1, 0x7f.1, 127.1
            socket.inet_aton(bare.rstrip("."))
        except OSError:
            return None
        raise Refused("an IP address must be written as four decimal numbers")
    return None


async def check(url: str, resolve: Resolver, *, allow_private: bool) -> tuple[Target, list[Address]]:
    """The URL's target and the addresses it resolves to now, every one of them public;
    Refused otherwise. With `allow_private`, any address passes."""
    target = parse(url)
    host = target.host.rstrip(".")
    if not allow_private and (host == "localhost" or host.endswith(".localhost")):
        raise Refused("localhost does not receive webhooks")
    named = literal(target.host)
    if named is not None:
        addresses: list[Address] = [named]
    else:
        try:
            found = await resolve(target.host, target.port)
        except (OSError, UnicodeError):
            raise Refused("the host does not resolve") from None
        addresses = [ipaddress.ip_address(a.split("%", 1)[0]) for a in found]
        if not addresses:
            raise Refused("the host does not resolve")
    if not allow_private:
        for address in addresses:
            reason = refusal(address)
            if reason is not None:
                raise Refused(f"the host is {reason}; webhooks go to public addresses only")
    return target, addresses


def _sixtofour(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    return address.sixtofour


def _teredo(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    return address.teredo[1] if address.teredo else None


def _nat64(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None
