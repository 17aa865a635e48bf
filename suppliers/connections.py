"""How a supplier adapter's requests travel: one request in, its status and body out.

A sale's job worker keeps 16 top-ups in flight, each one request to the supplier, so what a
request costs the gateway's CPU matters. `Pooled` uses aiohttp, whose pool hands over a kept
connection without looking at the others: 0.23 ms of client CPU a call against 2.19 ms through
httpx at 16 in flight, whose pool looks at every kept connection (a readability check of its
socket each) on every request (bench/supplier_client.py; docs/benchmarks.md, "Fulfilment: the
supplier call over aiohttp").
`OverHttpx` carries the same requests over an httpx client that is given, for a supplier
served in the same process (an ASGI app) or answered by a test's handler.

Either way no redirect is followed (a signed request goes to the supplier's address or
nowhere), no cookie is kept, and an answer is read up to `MAX_ANSWER_BYTES` (after
decompression): a supplier's answers are a few hundred bytes of JSON, and one that sends more
(a misconfigured or hostile endpoint) is no answer rather than the gateway's memory.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit
from urllib.request import getproxies_environment, proxy_bypass_environment

import aiohttp
import httpx

MAX_ANSWER_BYTES = 1 << 20
TOO_LARGE = "AnswerTooLarge"
TIMED_OUT = "no answer in time"


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    content: bytes

    @property
    def is_success(self) -> bool:
        return 200 <= self.status < 300


class NoAnswer(Exception):
    """No HTTP answer came; `reason` says why as an order's message shows it: "no answer in
    time", or the failure's name (the connection refused or lost, a malformed answer)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Connections(Protocol):
    async def request(self, method: str, url: str, body: bytes | None, headers: dict[str, str],
                      timeout_seconds: float) -> Answer: ...

    async def close(self) -> None: ...


class Pooled:
    """Kept-alive connections, as many as `limit` open at once. The session is made on first
    use, inside the event loop that uses it."""

    def __init__(self, limit: int = 50) -> None:
        self._limit = limit
        self._session: aiohttp.ClientSession | None = None
        self._proxies: dict[tuple[str, str], str | None] = {}

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._limit, limit_per_host=self._limit),
                cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=True,
            )
        return self._session

    def _proxy(self, url: str) -> str | None:
        """The proxy that HTTP(S)_PROXY and NO_PROXY name for the URL's host, read once per host.
        (aiohttp's own `trust_env` reads them, and ~/.netrc, in a thread on every request: a
        third of the worker's CPU in a sale's fulfilment.)"""
        parts = urlsplit(url)
        key = (parts.scheme, parts.hostname or "")
        if key not in self._proxies:
            proxies = getproxies_environment()
            bypassed = bool(proxy_bypass_environment(key[1], proxies)) if key[1] else True
            self._proxies[key] = None if bypassed else proxies.get(key[0])
        return self._proxies[key]

    async def request(self, method: str, url: str, body: bytes | None, headers: dict[str, str],
                      timeout_seconds: float) -> Answer:
        try:
            async with self._open().request(
                method, url, data=body, headers=headers, allow_redirects=False, proxy=self._proxy(url),
                timeout=aiohttp.ClientTimeout(total=timeout_seconds),
            ) as response:
                return Answer(response.status, await _bounded(response.content.iter_any()))
        except TimeoutError:  # aiohttp's own timeouts are TimeoutErrors too
            raise NoAnswer(TIMED_OUT) from None
        except (aiohttp.ClientError, ValueError) as error:  # ValueError: a URL it cannot use
            raise NoAnswer(_reason(error)) from None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class OverHttpx:
    """The requests over a given httpx client; closing it is its owner's."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    async def request(self, method: str, url: str, body: bytes | None, headers: dict[str, str],
                      timeout_seconds: float) -> Answer:
        try:
            async with self._client.stream(method, url, content=body, headers=headers,
                                           timeout=httpx.Timeout(timeout_seconds)) as response:
                return Answer(response.status_code, await _bounded(response.aiter_bytes()))
        except httpx.TimeoutException:
            raise NoAnswer(TIMED_OUT) from None
        except httpx.RequestError as error:
            raise NoAnswer(type(error).__name__) from None

    async def close(self) -> None:
        return None


async def _bounded(chunks: AsyncIterator[bytes]) -> bytes:
    """The body from its chunks, or NoAnswer as soon as it passes MAX_ANSWER_BYTES."""
    read: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > MAX_ANSWER_BYTES:
            raise NoAnswer(TOO_LARGE)
        read.append(chunk)
    return b"".join(read)


def _reason(error: Exception) -> str:
    """The failure's name as a log and an order's message show it: a connection refused reads
    the same whichever way the request travelled."""
    if isinstance(error, aiohttp.ClientConnectorError):
        return "ConnectError"
    return type(error).__name__

