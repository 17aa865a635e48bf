"""An idempotency key makes a retried placeOrder the same order, reserved once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.e2e.shop import Shop, open_shop, order_input

PLACE = """
mutation Place($input: PlaceOrderInput!) {
  placeOrder(input: $input) {
    order { id number status channel events { toStatus } }
    accessToken
    userErrors { field code }
  }
}
"""


@pytest.fixture(scope="module")
async def shop(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Shop]:
    async with open_shop(tmp_path_factory.mktemp("orders-idempotency")) as opened:
        yield opened


async def place(shop: Shop, given: dict[str, Any], key: str | None = None) -> dict[str, Any]:
    return (await shop.gql(PLACE, {"input": given}, key=key))["data"]["placeOrder"]


async def test_the_same_key_twice_is_the_same_order_reserved_once(shop: Shop) -> None:
    coins = await shop.shelf.card_codes(5)
    given = order_input((coins, 2))

    first = await place(shop, given)
    again = await place(shop, given)

    assert first["userErrors"] == [] and first["order"]["status"] == "PENDING_PAYMENT"
    assert again == first
    assert await shop.ledger.codes(coins) == {"AVAILABLE": 3, "RESERVED": 2}


async def test_the_same_key_sent_concurrently_is_one_order(shop: Shop) -> None:
    coins = await shop.shelf.card_codes(5)
    given = order_input((coins, 1))
    orders_before = await shop.ledger.order_count()

    answers = await asyncio.gather(*(place(shop, given) for _ in range(10)))

    assert all(answer == answers[0] for answer in answers) and answers[0]["userErrors"] == []
    assert await shop.ledger.order_count() == orders_before + 1
    assert await shop.ledger.codes(coins) == {"AVAILABLE": 4, "RESERVED": 1}


async def test_the_same_key_on_another_channel_is_another_order(shop: Shop) -> None:
    coins = await shop.shelf.card_codes(5)
    key = uuid.uuid4().hex

    on_web = await place(shop, order_input((coins, 1), channel="web", key=key))
    on_mini = await place(shop, order_input((coins, 1), channel="mini", key=key))

    assert (on_web["order"]["channel"], on_mini["order"]["channel"]) == ("web", "mini")
    assert on_web["order"]["number"] != on_mini["order"]["number"]
    assert on_web["accessToken"] != on_mini["accessToken"]
    assert await shop.ledger.codes(coins) == {"AVAILABLE": 3, "RESERVED": 2}


async def test_a_partner_retrying_its_external_order_number_gets_its_order(shop: Shop) -> None:
    video = await shop.shelf.counter(5)
    given = order_input((video, 2), channel="taobao", key="TB20261125-0001",
                        buyer={"phone": "13800138000", "rechargeAccount": "qq:1"})

    first = await place(shop, given, key=shop.keys.taobao)
    again = await place(shop, given, key=shop.keys.taobao)

    assert again == first and first["userErrors"] == []
    assert await shop.ledger.counter(video) == (5, 2)


async def test_a_key_reused_for_a_different_order_is_refused(shop: Shop) -> None:
    coins = await shop.shelf.card_codes(5)
    key = uuid.uuid4().hex
    mine = await place(shop, order_input((coins, 1), key=key, buyer={"phone": "13800138000"}))

    other_buyer = await place(shop, order_input((coins, 1), key=key, buyer={"phone": "13900139000"}))
    other_quantity = await place(shop, order_input((coins, 2), key=key, buyer={"phone": "13800138000"}))

    assert mine["userErrors"] == []
    refused = {"order": None, "accessToken": None, "userErrors": [{"field": "idempotencyKey", "code": "IDEMPOTENCY_KEY_REUSED"}]}
    assert (other_buyer, other_quantity) == (refused, refused)
    assert await shop.ledger.codes(coins) == {"AVAILABLE": 4, "RESERVED": 1}


async def test_a_refused_attempt_does_not_use_up_its_key(shop: Shop) -> None:
    coins = await shop.shelf.card_codes(1)
    key = uuid.uuid4().hex

    too_many = await place(shop, order_input((coins, 2), key=key))
    fits = await place(shop, order_input((coins, 1), key=key))

    assert too_many["userErrors"] == [{"field": "lines.0.quantity", "code": "OUT_OF_STOCK"}]
    assert fits["userErrors"] == [] and fits["order"]["status"] == "PENDING_PAYMENT"
