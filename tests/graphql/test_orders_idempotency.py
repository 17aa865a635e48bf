"""An idempotency key makes a retried placeOrder the same order, reserved once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from models import Order
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


# --- a guest's key is the secret that proves a retry -----------------------------------------

PLACE_ERRORS = """
mutation Place($input: PlaceOrderInput!) {
  placeOrder(input: $input) { order { number } accessToken userErrors { field message code } }
}
"""


async def _age(shop: Shop, number: str, by: timedelta) -> None:
    """The order as if it had been placed `by` earlier."""
    async with shop.db.sessions() as session, session.begin():
        order = await session.scalar(select(Order).where(Order.number == number))
        assert order is not None
        order.created_at -= by


@pytest.mark.parametrize("caller", ["anonymous", "storefront key"])
async def test_a_guests_key_shorter_than_16_characters_is_bad_input(shop: Shop, caller: str) -> None:
    coins = await shop.shelf.card_codes(5)
    key = shop.keys.web if caller == "storefront key" else None

    answers = [await shop.gql(PLACE, {"input": order_input((coins, 1), key=short)}, key=key)
               for short in ("order-1", "123456789012345", " 123456789012345 ")]

    assert [(a.get("data"), [(e["extensions"]["code"], e["extensions"]["field"]) for e in a["errors"]]) for a in answers] == [
        (None, [("BAD_USER_INPUT", "input.idempotencyKey")])] * 3
    assert answers[0]["errors"][0]["message"] == (
        "a guest's idempotencyKey is at least 16 characters: send a random one, such as a UUID, and the same one with each retry"
    )
    assert await shop.ledger.codes(coins) == {"AVAILABLE": 5}


async def test_a_partners_own_order_number_may_be_short(shop: Shop) -> None:
    video = await shop.shelf.counter(5)

    placed = await place(shop, order_input((video, 1), channel="taobao", key="TB-7",
                                           buyer={"phone": "13800138000", "rechargeAccount": "qq:1"}), key=shop.keys.taobao)

    assert placed["userErrors"] == []


@pytest.mark.parametrize("caller", ["anonymous", "storefront key"])
async def test_a_guests_retry_is_answered_for_24_hours_only(shop: Shop, caller: str) -> None:
    coins = await shop.shelf.card_codes(5)
    key = shop.keys.web if caller == "storefront key" else None
    given = order_input((coins, 1))
    first = (await shop.gql(PLACE_ERRORS, {"input": given}, key=key))["data"]["placeOrder"]

    await _age(shop, first["order"]["number"], timedelta(hours=23, minutes=59))
    within = (await shop.gql(PLACE_ERRORS, {"input": given}, key=key))["data"]["placeOrder"]
    await _age(shop, first["order"]["number"], timedelta(minutes=2))
    orders_before = await shop.ledger.order_count()
    after = (await shop.gql(PLACE_ERRORS, {"input": given}, key=key))["data"]["placeOrder"]

    assert within == first and first["accessToken"]
    assert after == {"order": None, "accessToken": None, "userErrors": [{
        "field": "idempotencyKey", "code": "IDEMPOTENCY_KEY_EXPIRED",
        "message": "this key's order was placed more than 24 hours ago, and a guest's retry is answered for 24 hours "
                   "only: read the order with its access token, or place a new order with a new key",
    }]}
    assert await shop.ledger.order_count() == orders_before  # nothing placed,
    assert await shop.ledger.codes(coins) == {"AVAILABLE": 4, "RESERVED": 1}  # nothing more reserved


async def test_a_partners_retry_is_answered_whatever_the_orders_age(shop: Shop) -> None:
    video = await shop.shelf.counter(5)
    given = order_input((video, 1), channel="taobao", key="TB20261125-0002",
                        buyer={"phone": "13800138000", "rechargeAccount": "qq:1"})
    first = await place(shop, given, key=shop.keys.taobao)

    await _age(shop, first["order"]["number"], timedelta(days=30))
    again = await place(shop, given, key=shop.keys.taobao)

    assert again == first and first["userErrors"] == []
