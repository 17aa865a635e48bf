"""Placing an order reserves stock of every kind at once, or nothing at all."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest

from schema.relay import encode_id
from tests.e2e.shop import Shop, StockedSku, open_shop, order_input

PLACE = """
mutation Place($input: PlaceOrderInput!) {
  placeOrder(input: $input) {
    order { id status total { amount } lines { quantity presaleQuantity sku { code } } }
    accessToken
    userErrors { field code }
  }
}
"""
CANCEL = """
mutation Cancel($id: ID!) { cancelOrder(orderId: $id) { order { status } userErrors { field code } } }
"""
TOP_UP = {"phone": "13800138000", "rechargeAccount": "qq:10001"}


@pytest.fixture(scope="module")
async def shop(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Shop]:
    async with open_shop(tmp_path_factory.mktemp("orders-stock")) as opened:
        yield opened


async def place(shop: Shop, *lines: tuple[StockedSku, int], channel: str = "web", key: str | None = None,
                buyer: dict[str, Any] | None = None) -> dict[str, Any]:
    answer = await shop.gql(PLACE, {"input": order_input(*lines, channel=channel, buyer=buyer)}, key=key)
    return answer["data"]["placeOrder"]


def refused(*errors: tuple[str | None, str]) -> dict[str, Any]:
    return {"order": None, "accessToken": None, "userErrors": [{"field": f, "code": c} for f, c in errors]}


async def test_card_codes_move_from_available_to_reserved(shop: Shop) -> None:
    steam = await shop.shelf.card_codes(5)

    placed = await place(shop, (steam, 2))

    assert placed["order"]["status"] == "PENDING_PAYMENT"
    assert await shop.stock(steam) == {"available": 3, "reserved": 2, "presale": 0}
    assert await shop.ledger.codes(steam) == {"AVAILABLE": 3, "RESERVED": 2}
    assert await shop.ledger.allocations(steam) == Counter({("CODE", "HELD"): 2})


async def test_a_top_up_reserves_counter_units(shop: Shop) -> None:
    video = await shop.shelf.counter(10)

    placed = await place(shop, (video, 3), buyer=TOP_UP)

    assert placed["userErrors"] == []
    assert await shop.stock(video) == {"available": 7, "reserved": 3, "presale": 0}
    assert await shop.ledger.counter(video) == (10, 3)


async def test_a_bundle_reserves_each_of_its_components(shop: Shop) -> None:
    coins = await shop.shelf.card_codes(4)
    video = await shop.shelf.counter(10)
    pack = await shop.shelf.bundle((coins, 1), (video, 2))

    placed = await place(shop, (pack, 2), buyer=TOP_UP)

    assert placed["order"]["lines"] == [{"quantity": 2, "presaleQuantity": 0, "sku": {"code": pack.code}}]
    assert [await shop.stock(s) for s in (coins, video, pack)] == [
        {"available": 2, "reserved": 2, "presale": 0},
        {"available": 6, "reserved": 4, "presale": 0},
        {"available": 2, "reserved": 0, "presale": 0},
    ]


async def test_a_serial_sells_its_uses(shop: Shop) -> None:
    licence = await shop.shelf.serials(2, uses=3)

    placed = await place(shop, (licence, 4))

    assert placed["userErrors"] == []
    assert await shop.ledger.uses_left(licence) == [0, 2]
    assert await shop.stock(licence) == {"available": 2, "reserved": 4, "presale": 0}


async def test_out_of_stock_on_one_line_reserves_nothing_on_any(shop: Shop) -> None:
    coins = await shop.shelf.card_codes(5)
    video = await shop.shelf.counter(1)
    licence = await shop.shelf.serials(1, uses=3)
    orders_before = await shop.ledger.order_count()

    placed = await place(shop, (coins, 2), (licence, 2), (video, 2), buyer=TOP_UP)

    assert placed == refused(("lines.2.quantity", "OUT_OF_STOCK"))
    assert await shop.ledger.codes(coins) == {"AVAILABLE": 5}
    assert await shop.ledger.uses_left(licence) == [3]
    assert await shop.ledger.counter(video) == (1, 0)
    assert await shop.ledger.allocations(coins) == Counter()
    assert await shop.ledger.order_count() == orders_before


async def test_a_bundle_is_out_of_stock_when_any_component_is(shop: Shop) -> None:
    coins = await shop.shelf.card_codes(3)
    video = await shop.shelf.counter(1)
    pack = await shop.shelf.bundle((coins, 1), (video, 1))

    placed = await place(shop, (pack, 2), buyer=TOP_UP)

    assert placed == refused(("lines.0.quantity", "OUT_OF_STOCK"))
    assert (await shop.ledger.codes(coins), await shop.ledger.counter(video)) == ({"AVAILABLE": 3}, (1, 0))


async def test_presale_takes_orders_beyond_the_codes_up_to_its_cap(shop: Shop) -> None:
    coins = await shop.shelf.card_codes(2, presale_cap=3)

    first = await place(shop, (coins, 4))
    second = await place(shop, (coins, 1))
    third = await place(shop, (coins, 1))

    assert [line["presaleQuantity"] for line in first["order"]["lines"] + second["order"]["lines"]] == [2, 1]
    assert third == refused(("lines.0.quantity", "OUT_OF_STOCK"))
    assert await shop.ledger.codes(coins) == {"RESERVED": 2}
    assert await shop.ledger.presale_used(coins) == 3
    assert await shop.stock(coins) == {"available": 0, "reserved": 2, "presale": 0}


async def test_cancelling_a_presale_order_gives_back_its_presale_units(shop: Shop) -> None:
    coins = await shop.shelf.card_codes(1, presale_cap=2)
    placed = await place(shop, (coins, 3))

    cancelled = await shop.gql(CANCEL, {"id": placed["order"]["id"]}, key=placed["accessToken"])

    assert cancelled["data"]["cancelOrder"] == {"order": {"status": "CANCELLED"}, "userErrors": []}
    assert await shop.ledger.presale_used(coins) == 0
    assert await shop.stock(coins) == {"available": 1, "reserved": 0, "presale": 2}


async def test_a_channel_quota_is_consumed_refused_beyond_and_released_on_cancel(shop: Shop) -> None:
    coins = await shop.shelf.card_codes(10)
    await shop.shelf.set_quota("web", coins, 3)

    first = await place(shop, (coins, 2))
    over = await place(shop, (coins, 2))
    on_mini = await place(shop, (coins, 2), channel="mini")
    seen_on_web = await shop.stock(coins)
    await shop.gql(CANCEL, {"id": first["order"]["id"]}, key=first["accessToken"])
    after_cancel = await place(shop, (coins, 3))

    assert over == refused(("lines.0.quantity", "QUOTA_EXCEEDED"))
    assert on_mini["userErrors"] == []
    assert seen_on_web == {"available": 1, "reserved": 4, "presale": 0}
    assert after_cancel["userErrors"] == []
    assert await shop.ledger.codes(coins) == {"AVAILABLE": 5, "RESERVED": 5}
    assert await shop.stock(coins) == {"available": 0, "reserved": 5, "presale": 0}


async def test_quota_refused_on_a_later_line_rolls_back_the_earlier_ones(shop: Shop) -> None:
    coins = await shop.shelf.card_codes(5)
    capped = await shop.shelf.card_codes(5)
    await shop.shelf.set_quota("web", capped, 1)

    placed = await place(shop, (coins, 1), (capped, 2))

    assert placed == refused(("lines.1.quantity", "QUOTA_EXCEEDED"))
    assert await shop.ledger.codes(coins) == {"AVAILABLE": 5}
    assert await shop.stock(capped) == {"available": 1, "reserved": 0, "presale": 0}


async def test_a_top_up_needs_the_account_to_credit(shop: Shop) -> None:
    video = await shop.shelf.counter(5)
    coins = await shop.shelf.card_codes(5)
    pack = await shop.shelf.bundle((coins, 1), (video, 1))

    for sku in (video, pack):
        for buyer in ({"phone": "13800138000"}, {"phone": "13800138000", "rechargeAccount": "  "}):
            assert await place(shop, (sku, 1), buyer=buyer) == refused(("buyer.rechargeAccount", "RECHARGE_ACCOUNT_REQUIRED"))
    assert await shop.ledger.counter(video) == (5, 0)


@pytest.mark.parametrize(("buyer", "error"), [
    ({}, ("buyer", "CONTACT_REQUIRED")),
    ({"phone": None, "email": None, "deviceId": "d1"}, ("buyer", "CONTACT_REQUIRED")),
    ({"phone": "138-0013-800"}, ("buyer.phone", "INVALID_INPUT")),
    ({"phone": "138001380001"}, ("buyer.phone", "INVALID_INPUT")),
    ({"phone": "12345"}, ("buyer.phone", "INVALID_INPUT")),
    ({"email": "not-an-email"}, ("buyer.email", "INVALID_INPUT")),
    ({"email": "a@b"}, ("buyer.email", "INVALID_INPUT")),
    ({"email": "a@example.com", "deviceId": "d" * 129}, ("buyer.deviceId", "INVALID_INPUT")),
])
async def test_buyer_contact_is_checked(shop: Shop, buyer: dict[str, Any], error: tuple[str, str]) -> None:
    coins = await shop.shelf.card_codes(1)

    assert await place(shop, (coins, 1), buyer=buyer) == refused(error)
    assert await shop.ledger.codes(coins) == {"AVAILABLE": 1}


async def test_quantities_are_checked_per_line(shop: Shop) -> None:
    coins = await shop.shelf.card_codes(3)

    zero = await place(shop, (coins, 1), (coins, 0))
    too_many = await place(shop, (coins, 1001))
    no_lines = await place(shop)
    many_lines = await place(shop, *[(coins, 1)] * 21)

    assert [zero, too_many, no_lines, many_lines] == [
        refused(("lines.1.quantity", "INVALID_INPUT")),
        refused(("lines.0.quantity", "INVALID_INPUT")),
        refused(("lines", "INVALID_INPUT")),
        refused(("lines", "INVALID_INPUT")),
    ]
    assert await shop.ledger.codes(coins) == {"AVAILABLE": 3}


async def test_two_lines_of_one_sku_are_one_reservation_of_their_sum(shop: Shop) -> None:
    coins = await shop.shelf.card_codes(3)

    placed = await place(shop, (coins, 1), (coins, 2))

    assert placed["order"]["lines"] == [{"quantity": 3, "presaleQuantity": 0, "sku": {"code": coins.code}}]
    assert await shop.ledger.codes(coins) == {"RESERVED": 3}


async def test_a_refusal_names_the_line_the_buyer_sent(shop: Shop) -> None:
    coins = await shop.shelf.card_codes(5)
    scarce = await shop.shelf.card_codes(1)

    placed = await place(shop, (coins, 1), (coins, 1), (scarce, 2))

    assert placed == refused(("lines.2.quantity", "OUT_OF_STOCK"))


async def test_an_unknown_or_withdrawn_sku_is_not_on_sale(shop: Shop) -> None:
    coins = await shop.shelf.card_codes(2)
    withdrawn = await shop.shelf.card_codes(2)
    await shop.shelf.withdraw(withdrawn)
    unknown = StockedSku(999_999, "UNKNOWN")

    answers = [await place(shop, (coins, 1), (sku, 1)) for sku in (unknown, withdrawn)]

    assert answers == [refused(("lines.1.skuId", "UNKNOWN_SKU"))] * 2
    assert await shop.ledger.codes(coins) == {"AVAILABLE": 2}


async def test_a_sku_of_a_withdrawn_product_is_not_on_sale(shop: Shop) -> None:
    coins = await shop.shelf.card_codes(2, product_active=False)

    assert await place(shop, (coins, 1)) == refused(("lines.0.skuId", "UNKNOWN_SKU"))
    assert await shop.ledger.codes(coins) == {"AVAILABLE": 2}


async def test_malformed_ids_and_unknown_channels_are_request_errors(shop: Shop) -> None:
    coins = await shop.shelf.card_codes(1)
    not_a_sku = order_input((coins, 1))
    not_a_sku["lines"][0]["skuId"] = encode_id("Product", shop.shelf.product_id)

    answers = [
        await shop.gql(PLACE, {"input": not_a_sku}),
        await shop.gql(PLACE, {"input": order_input((coins, 1), channel="nowhere")}),
    ]

    assert [(a["data"], [(e["extensions"]["code"], e["extensions"].get("field")) for e in a["errors"]]) for a in answers] == [
        (None, [("BAD_USER_INPUT", "lines.0.skuId")]),
        (None, [("BAD_USER_INPUT", "channel")]),
    ]
    assert await shop.ledger.codes(coins) == {"AVAILABLE": 1}


async def test_an_idempotency_key_is_one_to_128_characters(shop: Shop) -> None:
    coins = await shop.shelf.card_codes(1)
    blank, long = order_input((coins, 1), channel="taobao", key=" "), order_input((coins, 1), channel="taobao", key="k" * 129)
    guest_long = order_input((coins, 1), key="k" * 129)  # a guest's key: 16 characters at least (test_orders_idempotency)

    answers = [(await shop.gql(PLACE, {"input": given}, key=shop.keys.taobao))["data"]["placeOrder"] for given in (blank, long)]
    guest = (await shop.gql(PLACE, {"input": guest_long}))["data"]["placeOrder"]

    assert answers == [refused(("idempotencyKey", "INVALID_INPUT"))] * 2
    assert guest == refused(("idempotencyKey", "INVALID_INPUT"))
