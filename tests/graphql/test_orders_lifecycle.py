"""After placing: payment and cancellation, each once, each on the audit trail."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.e2e.shop import Shop, StockedSku, open_shop, order_input

PLACE = """
mutation Place($input: PlaceOrderInput!) {
  placeOrder(input: $input) { order { id number } accessToken userErrors { code } }
}
"""
PAY = """
mutation Pay($id: ID!, $reference: String!) {
  payOrder(orderId: $id, paymentReference: $reference) {
    order { status paymentReference paidAt expiresAt }
    userErrors { field code }
  }
}
"""
CANCEL = """
mutation Cancel($id: ID!) { cancelOrder(orderId: $id) { order { status } userErrors { field code } } }
"""
TRAIL = """
query Trail($id: ID!) { order(id: $id) { status events { actor fromStatus toStatus reason } } }
"""


@pytest.fixture(scope="module")
async def shop(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Shop]:
    async with open_shop(tmp_path_factory.mktemp("orders-lifecycle")) as opened:
        yield opened


async def place(shop: Shop, sku: StockedSku, quantity: int = 1, *, channel: str = "web", key: str | None = None) -> dict[str, Any]:
    payload = (await shop.gql(PLACE, {"input": order_input((sku, quantity), channel=channel)}, key=key))["data"]["placeOrder"]
    assert payload["userErrors"] == []
    return {"id": payload["order"]["id"], "number": payload["order"]["number"], "token": payload["accessToken"]}


async def pay(shop: Shop, order: dict[str, Any], reference: str, key: str | None = None) -> dict[str, Any]:
    answer = await shop.gql(PAY, {"id": order["id"], "reference": reference}, key=key or shop.keys.admin)
    return answer["data"]["payOrder"] if answer.get("data") else answer


async def cancel(shop: Shop, order: dict[str, Any], key: str | None = None) -> dict[str, Any]:
    return (await shop.gql(CANCEL, {"id": order["id"]}, key=key or order["token"]))["data"]["cancelOrder"]


async def trail(shop: Shop, order: dict[str, Any]) -> list[tuple[str, str | None, str]]:
    answer = await shop.gql(TRAIL, {"id": order["id"]}, key=shop.keys.admin)
    return [(e["actor"], e["fromStatus"], e["toStatus"]) for e in answer["data"]["order"]["events"]]


def admin(shop: Shop) -> str:
    return f"admin:{shop.keys.prefix(shop.keys.admin)}"


PLACED = [("anonymous", None, "PENDING_RISK"), ("system", "PENDING_RISK", "PENDING_PAYMENT")]


async def test_the_buyer_cancels_and_the_stock_comes_back_once(shop: Shop) -> None:
    coins = await shop.shelf.card_codes(3)
    order = await place(shop, coins, 2)

    first = await cancel(shop, order)
    second = await cancel(shop, order)

    assert first == {"order": {"status": "CANCELLED"}, "userErrors": []}
    assert second == {"order": {"status": "CANCELLED"}, "userErrors": [{"field": "orderId", "code": "INVALID_STATE"}]}
    assert await shop.ledger.codes(coins) == {"AVAILABLE": 3}
    assert await shop.ledger.allocations(coins) == Counter({("CODE", "RELEASED"): 2})
    assert await trail(shop, order) == [*PLACED, (f"buyer:{order['number']}", "PENDING_PAYMENT", "CANCELLED")]


async def test_a_cancelled_top_up_gives_back_its_counter_units_once(shop: Shop) -> None:
    video = await shop.shelf.counter(10)
    mine = (await shop.gql(PLACE, {"input": order_input((video, 3), buyer={"phone": "13800138000", "rechargeAccount": "qq:1"})}))
    theirs = (await shop.gql(PLACE, {"input": order_input((video, 4), buyer={"phone": "13900139000", "rechargeAccount": "qq:2"})}))
    order = {"id": mine["data"]["placeOrder"]["order"]["id"], "token": mine["data"]["placeOrder"]["accessToken"]}

    await cancel(shop, order)
    await cancel(shop, order)

    assert theirs["data"]["placeOrder"]["userErrors"] == []
    assert await shop.ledger.counter(video) == (10, 4)


async def test_an_operator_records_a_payment(shop: Shop) -> None:
    coins = await shop.shelf.card_codes(1)
    order = await place(shop, coins)

    paid = await pay(shop, order, "WX-0001")

    assert paid["userErrors"] == [] and paid["order"]["expiresAt"] is None and paid["order"]["paidAt"]
    assert (paid["order"]["status"], paid["order"]["paymentReference"]) == ("PAID", "WX-0001")
    assert await trail(shop, order) == [*PLACED, (admin(shop), "PENDING_PAYMENT", "PAID")]
    assert await shop.ledger.codes(coins) == {"RESERVED": 1}


async def test_the_channel_partner_records_a_payment_of_its_order(shop: Shop) -> None:
    coins = await shop.shelf.card_codes(1)
    order = await place(shop, coins, channel="taobao", key=shop.keys.taobao)

    paid = await pay(shop, order, "TB-PAY-1", key=shop.keys.taobao)

    assert (paid["order"]["status"], paid["userErrors"]) == ("PAID", [])
    partner = f"partner:{shop.keys.prefix(shop.keys.taobao)}"
    assert await trail(shop, order) == [(partner, None, "PENDING_RISK"), ("system", "PENDING_RISK", "PENDING_PAYMENT"),
                                        (partner, "PENDING_PAYMENT", "PAID")]


async def test_paying_again_with_the_same_reference_is_harmless(shop: Shop) -> None:
    coins = await shop.shelf.card_codes(1)
    order = await place(shop, coins)
    first = await pay(shop, order, "WX-0002")

    again = await pay(shop, order, "WX-0002")

    assert again == first
    assert await trail(shop, order) == [*PLACED, (admin(shop), "PENDING_PAYMENT", "PAID")]


async def test_a_second_payment_with_another_reference_does_not_pay_again(shop: Shop) -> None:
    coins = await shop.shelf.card_codes(1)
    order = await place(shop, coins)
    await pay(shop, order, "WX-0003")

    other = await pay(shop, order, "WX-9999")

    # Owed back to its payer (see test_payments_owed_back.py); the first payment stands.
    assert other["userErrors"] == [{"field": "orderId", "code": "REFUND_REQUESTED"}]
    assert (other["order"]["status"], other["order"]["paymentReference"]) == ("PAID", "WX-0003")


async def test_a_paid_order_cannot_be_cancelled(shop: Shop) -> None:
    coins = await shop.shelf.card_codes(1)
    order = await place(shop, coins)
    await pay(shop, order, "WX-0004")

    by_buyer = await cancel(shop, order)
    by_operator = await cancel(shop, order, key=shop.keys.admin)

    refused = {"order": {"status": "PAID"}, "userErrors": [{"field": "orderId", "code": "INVALID_STATE"}]}
    assert (by_buyer, by_operator) == (refused, refused)
    assert await shop.ledger.codes(coins) == {"RESERVED": 1}
    assert await trail(shop, order) == [*PLACED, (admin(shop), "PENDING_PAYMENT", "PAID")]


async def test_a_cancelled_order_cannot_be_paid(shop: Shop) -> None:
    coins = await shop.shelf.card_codes(1)
    order = await place(shop, coins)
    await cancel(shop, order)

    paid = await pay(shop, order, "WX-0005")

    # The payment is owed back instead (see test_payments_owed_back.py); the order stays cancelled.
    assert paid == {"order": {"status": "CANCELLED", "paymentReference": None, "paidAt": None, "expiresAt": None},
                    "userErrors": [{"field": "orderId", "code": "REFUND_REQUESTED"}]}
    assert await shop.ledger.codes(coins) == {"AVAILABLE": 1}
    assert await trail(shop, order) == [*PLACED, (f"buyer:{order['number']}", "PENDING_PAYMENT", "CANCELLED")]


async def test_the_channel_partner_and_operators_may_cancel(shop: Shop) -> None:
    coins = await shop.shelf.card_codes(2)
    on_taobao = await place(shop, coins, channel="taobao", key=shop.keys.taobao)
    on_web = await place(shop, coins)

    by_partner = await cancel(shop, on_taobao, key=shop.keys.taobao)
    by_operator = await cancel(shop, on_web, key=shop.keys.admin)

    assert by_partner == by_operator == {"order": {"status": "CANCELLED"}, "userErrors": []}
    assert (await trail(shop, on_web))[-1] == (admin(shop), "PENDING_PAYMENT", "CANCELLED")
    assert await shop.ledger.codes(coins) == {"AVAILABLE": 2}


@pytest.mark.parametrize("who", ["anonymous", "other buyer", "storefront key", "other partner"])
async def test_no_one_else_can_cancel(shop: Shop, who: str) -> None:
    coins = await shop.shelf.card_codes(2)
    order = await place(shop, coins)
    other = await place(shop, coins)
    key = {"anonymous": None, "other buyer": other["token"], "storefront key": shop.keys.web, "other partner": shop.keys.taobao}[who]

    answer = await shop.gql(CANCEL, {"id": order["id"]}, key=key)

    assert answer == {"data": {"cancelOrder": {"order": None, "userErrors": [{"field": "orderId", "code": "NOT_FOUND"}]}}}
    assert await shop.ledger.codes(coins) == {"RESERVED": 2}


@pytest.mark.parametrize(("who", "outcome"), [
    ("buyer", "UNAUTHENTICATED"), ("anonymous", "UNAUTHENTICATED"), ("storefront key", "NOT_FOUND"), ("other partner", "NOT_FOUND"),
])
async def test_only_operators_and_the_channel_partner_record_payments(shop: Shop, who: str, outcome: str) -> None:
    coins = await shop.shelf.card_codes(1)
    order = await place(shop, coins)
    key = {"buyer": order["token"], "anonymous": None, "storefront key": shop.keys.web, "other partner": shop.keys.taobao}[who]

    answer = await shop.gql(PAY, {"id": order["id"], "reference": "SELF-PAID"}, key=key)

    if outcome == "NOT_FOUND":
        assert answer == {"data": {"payOrder": {"order": None, "userErrors": [{"field": "orderId", "code": "NOT_FOUND"}]}}}
    else:
        assert (answer["data"], [e["extensions"]["code"] for e in answer["errors"]]) == (None, [outcome])
    assert await trail(shop, order) == PLACED


@pytest.mark.parametrize("reference", ["", "   ", "r" * 129])
async def test_a_payment_reference_is_one_to_128_characters(shop: Shop, reference: str) -> None:
    coins = await shop.shelf.card_codes(1)
    order = await place(shop, coins)

    paid = await pay(shop, order, reference)

    assert (paid["order"]["status"], paid["userErrors"]) == ("PENDING_PAYMENT", [{"field": "paymentReference", "code": "INVALID_INPUT"}])
    assert await trail(shop, order) == PLACED
