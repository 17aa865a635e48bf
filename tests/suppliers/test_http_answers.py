"""How the HTTP adapter reads each kind of answer: only a stated refusal is FAILED."""

from __future__ import annotations

import time

import httpx
import pytest

from domain.money import Money
from suppliers import signing
from suppliers.base import Outcome, Result, SupplierUnavailable, TopUp
from suppliers.http import HttpSupplier

SECRET = "answers-secret"
TOPUP = TopUp("Q2001-1", "QQ-COIN-50", "13800138000", 2, Money.of("50.00"), "https://gw/cb")


def adapter_answering(
    status: int, body: bytes, seen: list[httpx.Request] | None = None
) -> HttpSupplier:
    def answer(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        return httpx.Response(status, content=body)

    client = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    return HttpSupplier("mock", "https://supplier.example/api/", SECRET, client=client)


def result(status: str, request_id: str = "Q2001-1") -> bytes:
    return (f'{{"request_id": "{request_id}", "status": "{status}", "reference": "R9", '
            f'"message": "m"}}').encode()


@pytest.mark.parametrize(
    ("status", "body", "outcome", "message"),
    [
        (200, result("SUCCEEDED"), Outcome.SUCCEEDED, "m"),
        (202, result("PENDING"), Outcome.PENDING, "m"),
        (200, result("FAILED"), Outcome.FAILED, "m"),
        (422, b'{"message": "no such product"}', Outcome.FAILED, "no such product"),
        (400, b"<html>bad request</html>", Outcome.FAILED, "refused with HTTP 400"),
        (200, b"<html>maintenance</html>", Outcome.UNKNOWN, "submit: HTTP 200"),
        (200, result("SUCCEEDED", "ANOTHER"), Outcome.UNKNOWN, "submit: HTTP 200"),
        (200, result("NOT_FOUND"), Outcome.UNKNOWN, "submit: HTTP 200"),
        (200, result("CREDITED"), Outcome.UNKNOWN, "submit: HTTP 200"),
        (302, b"", Outcome.UNKNOWN, "submit: HTTP 302"),
        (429, b'{"message": "slow down"}', Outcome.UNKNOWN, "submit: HTTP 429"),
        (500, result("FAILED"), Outcome.UNKNOWN, "submit: HTTP 500"),
        (503, b"", Outcome.UNKNOWN, "submit: HTTP 503"),
    ],
)
async def test_a_submission_answer_maps_to_an_outcome(
    status: int, body: bytes, outcome: Outcome, message: str
) -> None:
    adapter = adapter_answering(status, body)

    got = await adapter.submit(TOPUP)

    assert (got.outcome, got.message) == (outcome, message)


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (200, result("SUCCEEDED"), Result(Outcome.SUCCEEDED, "Q2001-1", "R9", "m")),
        (404, result("NOT_FOUND"),
         Result(Outcome.NOT_FOUND, "Q2001-1", message="the supplier has no such request")),
        (404, result("NOT_FOUND", "ANOTHER"),
         Result(Outcome.UNKNOWN, "Q2001-1", message="query: HTTP 404 without NOT_FOUND")),
        (404, b"<html>not found</html>",
         Result(Outcome.UNKNOWN, "Q2001-1", message="query: HTTP 404 without NOT_FOUND")),
        (401, b'{"message": "bad signature"}',
         Result(Outcome.UNKNOWN, "Q2001-1", message="query: HTTP 401")),
        (502, b"", Result(Outcome.UNKNOWN, "Q2001-1", message="query: HTTP 502")),
    ],
)
async def test_a_query_answer_maps_to_an_outcome(
    status: int, body: bytes, expected: Result
) -> None:
    assert await adapter_answering(status, body).query("Q2001-1") == expected


async def test_a_submission_is_signed_json_the_supplier_can_verify() -> None:
    seen: list[httpx.Request] = []
    adapter = adapter_answering(200, result("PENDING"), seen)

    await adapter.submit(TOPUP)

    [request] = seen
    signing.verify(SECRET, request.headers, request.content, time.time())
    assert (request.method, str(request.url), request.headers["content-type"]) == (
        "POST", "https://supplier.example/api/topups", "application/json",
    )
    assert request.content == (
        b'{"request_id":"Q2001-1","product":"QQ-COIN-50","account":"13800138000","quantity":2,'
        b'"face_value":"50.00","currency":"CNY","callback_url":"https://gw/cb"}'
    )


async def test_a_query_signs_its_path() -> None:
    seen: list[httpx.Request] = []
    adapter = adapter_answering(200, result("SUCCEEDED", "Q/1 2"), seen)

    assert (await adapter.query("Q/1 2")).outcome is Outcome.SUCCEEDED
    [request] = seen
    assert str(request.url) == "https://supplier.example/api/topups/Q%2F1%202"
    signing.verify(SECRET, request.headers, b"/topups/Q%2F1%202", time.time())


async def test_a_balance_is_exact_money_or_unavailable() -> None:
    good = adapter_answering(200, b'{"balance": "1234.50", "currency": "CNY"}')
    floaty = adapter_answering(200, b'{"balance": 1234.5, "currency": "CNY"}')
    down = adapter_answering(503, b"")

    assert await good.balance() == Money.of("1234.50")
    for adapter in (floaty, down):
        with pytest.raises(SupplierUnavailable, match="supplier mock: no balance"):
            await adapter.balance()
