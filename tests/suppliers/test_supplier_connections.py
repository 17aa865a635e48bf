"""The adapter's own connections over real sockets: what a hostile or broken supplier address
can and cannot make it do."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import httpx
import pytest

from domain.money import Money
from suppliers.base import Outcome, Result, TopUp
from suppliers.connections import MAX_ANSWER_BYTES
from suppliers.http import HttpSupplier
from tests.suppliers.conftest import SECRET

TOPUP = TopUp("Q3001-1", "QQ-COIN-50", "13800138000", 1, Money.of("50.00"))
Respond = Callable[[bytes], bytes | None]


@asynccontextmanager
async def raw_server(respond: Respond) -> AsyncIterator[tuple[str, list[bytes]]]:
    """A server that records each request's head and answers with `respond(head)`'s bytes,
    or drops the connection when it returns None; keeps the connection open otherwise."""
    heads: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                await reader.readexactly(length)
                heads.append(head)
                answer = respond(head)
                if answer is None:
                    break
                writer.write(answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", heads
    finally:
        server.close()
        await server.wait_closed()


def answer(status: str, body: bytes = b"", headers: str = "") -> bytes:
    return (f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n{headers}\r\n").encode() + body


async def test_a_redirect_is_not_followed_so_the_signed_request_goes_nowhere_else() -> None:
    async with raw_server(lambda head: answer("200 OK", b"{}")) as (elsewhere, elsewhere_heads):
        moved = answer("307 Temporary Redirect", headers=f"Location: {elsewhere}/topups\r\n")
        async with raw_server(lambda head: moved) as (url, heads):
            adapter = HttpSupplier("moved", url, SECRET, timeout_seconds=2)
            try:
                got = await adapter.submit(TOPUP)
            finally:
                await adapter.close()

    assert got == Result(Outcome.UNKNOWN, "Q3001-1", message="submit: HTTP 307")
    assert len(heads) == 1 and elsewhere_heads == []


async def test_a_cookie_the_supplier_sets_is_never_sent_back() -> None:
    body = b'{"request_id": "Q3001-1", "status": "SUCCEEDED", "reference": "R1", "message": ""}'
    sets_cookie = answer("200 OK", body, "Set-Cookie: session=abc; Path=/\r\n")
    async with raw_server(lambda head: sets_cookie) as (url, heads):
        # By its name, not its IP address: cookies from an IP address are not kept anyway.
        adapter = HttpSupplier("cookies", url.replace("127.0.0.1", "localhost"), SECRET, timeout_seconds=2)
        try:
            first = await adapter.submit(TOPUP)
            second = await adapter.query("Q3001-1")
        finally:
            await adapter.close()

    assert first.outcome is second.outcome is Outcome.SUCCEEDED
    assert len(heads) == 2 and not any(b"cookie:" in head.lower() for head in heads)


async def test_a_connection_dropped_before_the_answer_is_unknown_and_the_next_call_reconnects() -> None:
    body = b'{"request_id": "Q3001-1", "status": "SUCCEEDED", "reference": "R1", "message": ""}'
    answers = iter([None, answer("200 OK", body)])
    async with raw_server(lambda head: next(answers)) as (url, heads):
        adapter = HttpSupplier("flaky", url, SECRET, timeout_seconds=2)
        try:
            dropped = await adapter.submit(TOPUP)
            answered = await adapter.query("Q3001-1")
        finally:
            await adapter.close()

    assert dropped.outcome is Outcome.UNKNOWN and dropped.message.startswith("submit: ")
    assert answered == Result(Outcome.SUCCEEDED, "Q3001-1", "R1", "")
    assert len(heads) == 2


async def test_a_supplier_address_that_is_not_a_url_is_unknown_not_a_crash() -> None:
    adapter = HttpSupplier("typo", "htp//supplier", SECRET, timeout_seconds=2)
    try:
        got = await adapter.submit(TOPUP)
    finally:
        await adapter.close()

    assert got.outcome is Outcome.UNKNOWN


async def test_the_proxy_the_environment_names_carries_the_calls_unless_no_proxy_names_the_host(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    body = b'{"request_id": "Q3001-1", "status": "SUCCEEDED", "reference": "R1", "message": ""}'
    async with raw_server(lambda head: answer("200 OK", body)) as (proxy, heads):
        monkeypatch.setenv("HTTP_PROXY", proxy)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        through = HttpSupplier("proxied", "http://supplier.invalid:8080", SECRET, timeout_seconds=2)
        direct = HttpSupplier("direct", "http://supplier.invalid:8080", SECRET, timeout_seconds=2)
        try:
            proxied_answer = await through.submit(TOPUP)
            monkeypatch.setenv("NO_PROXY", "supplier.invalid")
            direct_answer = await direct.submit(TOPUP)
        finally:
            await through.close()
            await direct.close()

    assert proxied_answer.outcome is Outcome.SUCCEEDED
    assert [head.split(b"\r\n")[0] for head in heads] == [b"POST http://supplier.invalid:8080/topups HTTP/1.1"]
    assert direct_answer == Result(Outcome.UNKNOWN, "Q3001-1", message="submit: ConnectError")


@pytest.mark.parametrize("framing", ["length", "chunked", "gzip"])
async def test_an_answer_too_large_to_be_a_supplier_answer_is_unknown_and_not_kept(framing: str) -> None:
    big = b"[" + b"0," * (MAX_ANSWER_BYTES // 2 + 10) + b"0]"
    if framing == "length":
        flood = answer("200 OK", big)
    elif framing == "chunked":  # no length announced: only counting what arrives stops it
        chunk = b"%x\r\n%s\r\n" % (len(big), big)
        flood = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk + b"0\r\n\r\n"
    else:  # small on the wire, large once inflated
        flood = answer("200 OK", gzip.compress(big), "Content-Encoding: gzip\r\n")
    async with raw_server(lambda head: flood) as (url, _):
        pooled = HttpSupplier("flood", url, SECRET, timeout_seconds=5)
        async with httpx.AsyncClient() as client:
            over_httpx = HttpSupplier("flood", url, SECRET, timeout_seconds=5, client=client)
            try:
                answers = [await pooled.submit(TOPUP), await over_httpx.submit(TOPUP)]
            finally:
                await pooled.close()

    assert answers == [Result(Outcome.UNKNOWN, "Q3001-1", message="submit: AnswerTooLarge")] * 2
