"""Hold limits: one caller from the public cannot park a SKU's stock in unpaid orders.

The shop runs with the gateway's default caps (5 units per buyer, 20 per address) behind a
trusted proxy, so each test names the client's address in X-Forwarded-For.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.e2e.shop import Shop, StockedSku, open_shop, order_input
from tests.support import without_cost

PLACE = """
mutation Place($input: PlaceOrderInput!) {
  placeOrder(input: $input) { order { id status } accessToken userErrors { field message code } }
}
"""
CANCEL = """
mutation Cancel($id: ID!) { cancelOrder(orderId: $id) { order { status } userErrors { code } } }
"""
PAY = """
mutation Pay($id: ID!, $reference: String!) { payOrder(orderId: $id, paymentReference: $reference) { userErrors { code } } }
"""
SET_HOLD = """
mutation Hold($input: SetHoldLimitInput!) {
  setHoldLimit(input: $input) { holdLimit { channel perBuyer perAddress own } userErrors { field code } }
}
"""
CHANNEL_HOLDS = "{ channels { code holdLimit { perBuyer perAddress own } } }"

_addresses = (f"198.51.100.{n}" for n in itertools.count(1))
_phones = (f"1390000{n:04d}" for n in itertools.count(1))


@pytest.fixture(scope="module")
async def shop(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Shop]:
    async with open_shop(
        tmp_path_factory.mktemp("hold-limits"), hold_limit=5, hold_limit_per_ip=20, trusted_proxies="127.0.0.1",
    ) as opened:
        yield opened


async def place(
    shop: Shop, sku: StockedSku, quantity: int = 1, *, address: str, phone: str, key: str | None = None,
    channel: str = "web",
) -> dict[str, Any]:
    """placeOrder from a client at `address` (our proxy, the test client, says so)."""
    headers = {"accept": "application/graphql-response+json", "x-forwarded-for": address}
    if key:
        headers["authorization"] = f"Bearer {key}"
    given = order_input((sku, quantity), channel=channel, buyer={"phone": phone})
    response = await shop.client.http.post("/graphql", json={"query": PLACE, "variables": {"input": given}}, headers=headers)
    return without_cost(response.json())["data"]["placeOrder"]


def codes(placed: dict[str, Any]) -> list[str]:
    return [error["code"] for error in placed["userErrors"]] or ["PLACED"]


async def test_two_hundred_orders_from_one_address_leave_the_stock_for_others(shop: Shop) -> None:
    coins = await shop.shelf.card_codes(50)
    address = next(_addresses)

    # The worst case: a new phone every time, so only the address ties the orders together.
    answers = await asyncio.gather(*(place(shop, coins, address=address, phone=next(_phones)) for _ in range(200)))
    someone_else = await place(shop, coins, address=next(_addresses), phone=next(_phones))

    assert sorted(codes(answer)[0] for answer in answers) == ["HOLD_LIMIT"] * 180 + ["PLACED"] * 20
    assert codes(someone_else) == ["PLACED"]
    assert await shop.stock(coins) == {"available": 29, "reserved": 21, "presale": 0}


async def test_one_buyer_holds_five_units_at_once_whatever_address_they_come_from(shop: Shop) -> None:
    coins = await shop.shelf.card_codes(50)
    phone = next(_phones)

    answers = [await place(shop, coins, 2, address=next(_addresses), phone=phone) for _ in range(3)]

    assert [codes(answer) for answer in answers] == [["PLACED"], ["PLACED"], ["HOLD_LIMIT"]]
    assert answers[2]["userErrors"] == [{
        "field": "lines.0.quantity", "code": "HOLD_LIMIT",
        "message": "at most 5 units may wait for payment at once: pay or cancel your open orders first",
    }]
    assert await shop.stock(coins) == {"available": 46, "reserved": 4, "presale": 0}


async def test_one_order_of_twenty_units_is_refused_and_reserves_nothing(shop: Shop) -> None:
    coins = await shop.shelf.card_codes(50)
    orders_before = await shop.ledger.order_count()

    answer = await place(shop, coins, 20, address=next(_addresses), phone=next(_phones))

    assert codes(answer) == ["HOLD_LIMIT"]
    assert await shop.ledger.order_count() == orders_before
    assert await shop.ledger.codes(coins) == {"AVAILABLE": 50}


async def test_paying_or_cancelling_an_order_frees_what_it_held(shop: Shop) -> None:
    coins = await shop.shelf.card_codes(50)
    phone, address = next(_phones), next(_addresses)
    paid = await place(shop, coins, 3, address=address, phone=phone)
    cancelled = await place(shop, coins, 2, address=address, phone=phone)
    full = await place(shop, coins, 1, address=address, phone=phone)

    await shop.gql(PAY, {"id": paid["order"]["id"], "reference": "WX-HOLD-1"}, key=shop.keys.admin)
    after_payment = await place(shop, coins, 3, address=address, phone=phone)
    await shop.gql(CANCEL, {"id": cancelled["order"]["id"]}, key=cancelled["accessToken"])
    after_cancel = await place(shop, coins, 2, address=address, phone=phone)

    assert [codes(answer) for answer in (paid, cancelled, full, after_payment, after_cancel)] == [
        ["PLACED"], ["PLACED"], ["HOLD_LIMIT"], ["PLACED"], ["PLACED"],
    ]


async def test_a_storefront_key_is_held_like_an_anonymous_caller_and_a_partner_is_not(shop: Shop) -> None:
    coins = await shop.shelf.card_codes(50)

    storefront = await place(shop, coins, 6, address=next(_addresses), phone=next(_phones), key=shop.keys.web)
    partner = await place(shop, coins, 20, address=next(_addresses), phone=next(_phones), key=shop.keys.taobao,
                          channel="taobao")

    assert codes(storefront) == ["HOLD_LIMIT"]
    assert codes(partner) == ["PLACED"]


async def test_an_operator_sets_a_channels_own_hold_caps(shop: Shop) -> None:
    coins = await shop.shelf.card_codes(50)
    phone = next(_phones)

    tightened = await shop.gql(SET_HOLD, {"input": {"channel": "mini", "perBuyer": 1}}, key=shop.keys.admin)
    read = await shop.gql(CHANNEL_HOLDS, key=shop.keys.admin)
    on_mini = [await place(shop, coins, address=next(_addresses), phone=phone, channel="mini") for _ in range(2)]
    restored = await shop.gql(SET_HOLD, {"input": {"channel": "mini"}}, key=shop.keys.admin)
    after = await place(shop, coins, address=next(_addresses), phone=phone, channel="mini")

    assert tightened["data"]["setHoldLimit"] == {
        "holdLimit": {"channel": "mini", "perBuyer": 1, "perAddress": 20, "own": True}, "userErrors": [],
    }
    holds = {channel["code"]: channel["holdLimit"] for channel in read["data"]["channels"]}
    assert holds["mini"] == {"perBuyer": 1, "perAddress": 20, "own": True}
    assert holds["web"] == {"perBuyer": 5, "perAddress": 20, "own": False}
    assert [codes(answer) for answer in on_mini] == [["PLACED"], ["HOLD_LIMIT"]]
    assert restored["data"]["setHoldLimit"]["holdLimit"] == {"channel": "mini", "perBuyer": 5, "perAddress": 20, "own": False}
    assert codes(after) == ["PLACED"]


async def test_only_operators_read_hold_caps(shop: Shop) -> None:
    for key in (None, shop.keys.web, shop.keys.taobao):
        answer = await shop.gql(CHANNEL_HOLDS, key=key)
        assert {channel["holdLimit"] is None for channel in answer["data"]["channels"]} == {True}
