"""Sending one webhook request: the `Receiver` protocol and its HTTP implementation.

Short timeouts (a slow receiver holds one sending slot for seconds, not minutes), no
redirects followed (a 3xx is an answer, and following it would let a receiver point the
gateway anywhere), at most `SNIPPET` bytes of the answer read, and the connection made to
the address that passed the check (services/webhooks/addresses.py), with the registered
name kept for the Host header and for TLS (SNI and certificate checks).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

import httpx

from services.webhooks.addresses import Refused, Resolver, check, system_resolver

SNIPPET = 500  # bytes of a receiver's answer kept with the attempt
TIMEOUT = httpx.Timeout(10.0, connect=3.0)


@dataclass(frozen=True, slots=True)
class Answer:
    status_code: int | None  # None: no answer (refused, timed out, address refused)
    duration_ms: int
    error: str | None = None  # the failure's class and, for a refused address, why
    response: str | None = None  # the start of the answer's body

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class Receiver(Protocol):
    async def send(self, url: str, headers: dict[str, str], body: bytes) -> Answer: ...

    async def close(self) -> None: ...


class HttpReceiver:
    def __init__(self, *, allow_private: bool, resolve: Resolver = system_resolver,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._allow_private = allow_private
        self._resolve = resolve
        self._client = httpx.AsyncClient(
            timeout=TIMEOUT, follow_redirects=False, transport=transport, trust_env=False,
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
            headers={"user-agent": "Quanyi-Webhooks/1"},
        )

    async def send(self, url: str, headers: dict[str, str], body: bytes) -> Answer:
        started = time.perf_counter()
        try:
            request = await self._request(url, headers, body)
        except Refused as refused:
            return Answer(None, _ms(started), f"AddressRefused: {refused}"[:200])
        try:
            response = await self._client.send(request, stream=True)
            try:
                snippet = response.content if response.is_stream_consumed else b""  # read already (a test transport)
                if not response.is_stream_consumed:
                    async for chunk in response.aiter_raw():
                        snippet += chunk
                        if len(snippet) >= SNIPPET:
                            break  # a receiver answering megabytes is not read to its end
            finally:
                await response.aclose()
            return Answer(response.status_code, _ms(started), None, snippet[:SNIPPET].decode("utf-8", "replace") or None)
        except Exception as error:  # noqa: BLE001 - any failure to get an answer is a failed attempt, by its class
            return Answer(None, _ms(started), type(error).__name__)

    async def _request(self, url: str, headers: dict[str, str], body: bytes) -> httpx.Request:
        target, addresses = await check(url, self._resolve, allow_private=self._allow_private)
        if self._allow_private:
            return self._client.build_request("POST", target.url, headers=headers, content=body)
        # Pinned: the request goes to the address just checked, not to a fresh lookup of the name.
        pinned = target.url.copy_with(host=str(addresses[0]))
        host = target.url.netloc.decode("ascii")
        extensions = {"sni_hostname": target.host} if target.url.scheme == "https" else {}
        return self._client.build_request("POST", pinned, headers={**headers, "host": host}, content=body,
                                          extensions=extensions)

    async def close(self) -> None:
        await self._client.aclose()


def _ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)
