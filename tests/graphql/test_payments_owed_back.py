"""A payment recorded with payOrder for an order that cannot take it is owed back, once,
and shows on the order; of a payment and a cancel or an expiry, exactly one wins."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable
from datetime import datetime
from typing import Any

import pytest

from tests.e2e.shop import Shop, StockedSku, open_shop, order_input

PLACE = """
mutation Place($input: PlaceOrderInput!) {
  placeOrder(input: $input) { order { id number expiresAt } accessToken userErrors { code } }
}
"""
PAY = """
mutation Pay($id: ID!, $reference: String!) {
  payOrder(orderId: $id, paymentReference: $reference) {
    order { status paymentReference refunds { amount { amount currency } status reference reason } }
    userErrors { field message code }
  }
}
"""
CANCEL = """
mutation Cancel($id: ID!) { cancelOrder(orderId: $id) { order { status } userErrors { code } } }
"""
REFUNDS = """
query Refunds($id: ID!) { order(id: $id) { status refunds { id amount { amount } status reference reason createdAt } } }
"""


@pytest.fixture(scope="module")
async def shop(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Shop]:
    async with open_shop(tmp_path_factory.mktemp("owed-back"), expiry_interval_seconds=3600) as opened:
        opened.extra["coins"] = await opened.shelf.card_codes(200, price_fen=990)
        yield opened


@pytest.fixture(scope="module")
async def swept(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Shop]:
    """Orders live one second; the sweep runs twenty times a second."""
    async with open_shop(tmp_path_factory.mktemp("owed-back-swept"), order_ttl_seconds=1,
                         expiry_interval_seconds=0.05) as opened:
        opened.extra["coins"] = await opened.shelf.card_codes(40, price_fen=990)
        yield opened


async def place(shop: Shop, *, channel: str = "web", key: str | None = None, quantity: int = 1) -> dict[str, Any]:
    sku: StockedSku = shop.extra["coins"]
    answer = await shop.gql(PLACE, {"input": order_input((sku, quantity), channel=channel)}, key=key)
    placed = answer["data"]["placeOrder"]
    assert placed["userErrors"] == [], answer
    return {**placed["order"], "token": placed["accessToken"]}


async def pay(shop: Shop, order: dict[str, Any], reference: str, key: str | None = None) -> dict[str, Any]:
    answer = await shop.gql(PAY, {"id": order["id"], "reference": reference}, key=key or shop.keys.admin)
    return answer["data"]["payOrder"]


async def cancel(shop: Shop, order: dict[str, Any]) -> dict[str, Any]:
    return (await shop.gql(CANCEL, {"id": order["id"]}, key=order["token"]))["data"]["cancelOrder"]


async def refunds(shop: Shop, order: dict[str, Any], key: str | None = None) -> dict[str, Any] | None:
    return (await shop.gql(REFUNDS, {"id": order["id"]}, key=key or shop.keys.admin))["data"]["order"]


def owed(reference: str, reason: str, amount: str = "9.90") -> dict[str, Any]:
    return {"amount": {"amount": amount, "currency": "CNY"}, "status": "REQUESTED", "reference": reference, "reason": reason}


async def test_paying_a_cancelled_order_answers_that_the_payment_will_be_returned(shop: Shop) -> None:
    # Given a cancelled order
    order = await place(shop)
    assert (await cancel(shop, order))["userErrors"] == []

    # When a payment is recorded for it, and the same payment again
    first = await pay(shop, order, "WX-AFTER-CANCEL")
    again = await pay(shop, order, "WX-AFTER-CANCEL")

    # Then the answer says the payment will be returned, and the order shows one refund of it
    expected = {
        "order": {"status": "CANCELLED", "paymentReference": None,
                  "refunds": [owed("WX-AFTER-CANCEL", "the order was cancelled")]},
        "userErrors": [{"field": "orderId", "code": "REFUND_REQUESTED",
                        "message": "the order was cancelled: the payment will be returned"}],
    }
    assert first == again == expected


async def test_a_second_payment_of_a_paid_order_is_owed_back_and_the_first_stands(shop: Shop) -> None:
    order = await place(shop)
    assert (await pay(shop, order, "WX-FIRST"))["userErrors"] == []

    second = await pay(shop, order, "WX-SECOND")
    first_again = await pay(shop, order, "WX-FIRST")

    assert second["userErrors"][0]["code"] == "REFUND_REQUESTED"
    assert (second["order"]["status"], second["order"]["paymentReference"]) == ("PAID", "WX-FIRST")
    assert second["order"]["refunds"] == [owed("WX-SECOND", "the order was already paid with another payment")]
    assert (first_again["userErrors"], first_again["order"]["refunds"]) == ([], second["order"]["refunds"])


async def test_a_malformed_reference_is_no_payment_and_owes_nothing(shop: Shop) -> None:
    order = await place(shop)
    await cancel(shop, order)

    answer = await pay(shop, order, "   ")

    assert answer["userErrors"] == [{"field": "paymentReference", "code": "INVALID_INPUT",
                                     "message": "a payment reference is 1 to 128 characters"}]
    assert answer["order"]["refunds"] == []


@pytest.mark.parametrize(("reader", "sees"), [
    ("operator", True), ("channel partner", True), ("buyer", True),
    ("other partner", False), ("storefront key", False), ("anonymous", False),
])
async def test_refunds_are_read_by_operators_the_channel_and_the_buyer_only(shop: Shop, reader: str, sees: bool) -> None:
    order = await place(shop, channel="taobao", key=shop.keys.taobao)
    await cancel(shop, order)
    assert (await pay(shop, order, "TB-LATE-1", key=shop.keys.taobao))["userErrors"][0]["code"] == "REFUND_REQUESTED"
    key = {"operator": shop.keys.admin, "channel partner": shop.keys.taobao, "buyer": order["token"],
           "other partner": shop.keys.b2b, "storefront key": shop.keys.web, "anonymous": None}[reader]

    answer = await shop.gql(REFUNDS, {"id": order["id"]}, key=key)

    if sees:
        refund = answer["data"]["order"]["refunds"]
        assert [(r["amount"], r["reference"], r["status"]) for r in refund] == [({"amount": "9.90"}, "TB-LATE-1", "REQUESTED")]
        assert refund[0]["id"] and datetime.fromisoformat(refund[0]["createdAt"])
    else:
        assert answer == {"data": {"order": None}}


async def after(seconds: float, call: Awaitable[dict[str, Any]]) -> dict[str, Any]:
    await asyncio.sleep(seconds)
    return await call


async def test_of_a_payment_and_a_cancel_at_once_exactly_one_wins(shop: Shop) -> None:
    # Given twelve unpaid orders, each paid and cancelled at about the same moment (the cancels
    # spread over a fifth of a second, so that each side wins some)
    orders = [await place(shop) for _ in range(12)]

    await asyncio.gather(*(
        call for n, order in enumerate(orders)
        for call in (after(0.0, pay(shop, order, f"WX-RACE-{n}")),
                     after(0.02 * n, cancel(shop, order)))
    ))

    # Then each is either paid and owes nothing, or cancelled and owes exactly its payment back
    for n, order in enumerate(orders):
        seen = await refunds(shop, order)
        assert seen is not None
        returned = [(r["reference"], r["amount"]["amount"], r["status"]) for r in seen["refunds"]]
        assert (seen["status"], returned) in (("PAID", []), ("CANCELLED", [(f"WX-RACE-{n}", "9.90", "REQUESTED")])), seen


async def test_of_a_payment_and_an_expiry_at_once_exactly_one_wins(swept: Shop) -> None:
    # Given orders whose deadline is about to pass while the sweep runs
    orders = await asyncio.gather(*(place(swept) for _ in range(10)))

    # When each is paid around its deadline, some just before and some just after
    async def pay_near_deadline(n: int, order: dict[str, Any]) -> None:
        deadline = datetime.fromisoformat(order["expiresAt"]).timestamp()
        await asyncio.sleep(max(0.0, deadline - time.time() + (n - 5) * 0.02))
        await pay(swept, order, f"WX-EXPIRY-{n}")

    await asyncio.gather(*(pay_near_deadline(n, order) for n, order in enumerate(orders)))
    await asyncio.sleep(0.3)  # the sweep takes whatever is left

    # Then each is either paid and owes nothing, or expired and owes exactly its payment back
    for n, order in enumerate(orders):
        seen = await refunds(swept, order)
        assert seen is not None
        returned = [(r["reference"], r["status"]) for r in seen["refunds"]]
        assert (seen["status"], returned) in (("PAID", []), ("EXPIRED", [(f"WX-EXPIRY-{n}", "REQUESTED")])), seen
