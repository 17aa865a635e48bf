"""Unpaid orders expire after their TTL and give their stock back, exactly once."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.e2e.shop import Shop, StockedSku, open_shop, order_input

PLACE = """
mutation Place($input: PlaceOrderInput!) {
  placeOrder(input: $input) { order { id number expiresAt createdAt } accessToken userErrors { code } }
}
"""
PAY = """
mutation Pay($id: ID!, $reference: String!) {
  payOrder(orderId: $id, paymentReference: $reference) { order { status } userErrors { field code } }
}
"""
CANCEL = """
mutation Cancel($id: ID!) { cancelOrder(orderId: $id) { order { status } userErrors { field code } } }
"""
TRAIL = """
query Trail($id: ID!) { order(id: $id) { status expiresAt events { actor fromStatus toStatus reason } } }
"""
TOP_UP = {"phone": "13800138000", "rechargeAccount": "qq:10001"}
EXPIRED = {"actor": "system", "fromStatus": "PENDING_PAYMENT", "toStatus": "EXPIRED", "reason": "not paid in time"}


@pytest.fixture(scope="module")
async def swept(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Shop]:
    """Orders live one second; the sweep runs five times a second."""
    async with open_shop(tmp_path_factory.mktemp("orders-swept"), order_ttl_seconds=1, expiry_interval_seconds=0.2) as shop:
        yield shop


@pytest.fixture(scope="module")
async def unswept(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Shop]:
    """Orders live one second; the sweep runs at start-up only."""
    async with open_shop(tmp_path_factory.mktemp("orders-unswept"), order_ttl_seconds=1, expiry_interval_seconds=3600) as shop:
        yield shop


async def place(shop: Shop, sku: StockedSku, quantity: int = 1, buyer: dict[str, Any] | None = None) -> dict[str, Any]:
    payload = (await shop.gql(PLACE, {"input": order_input((sku, quantity), buyer=buyer)}))["data"]["placeOrder"]
    assert payload["userErrors"] == []
    return {"id": payload["order"]["id"], "number": payload["order"]["number"], "token": payload["accessToken"],
            "expiresAt": payload["order"]["expiresAt"], "createdAt": payload["order"]["createdAt"]}


async def order_of(shop: Shop, order: dict[str, Any]) -> dict[str, Any]:
    return (await shop.gql(TRAIL, {"id": order["id"]}, key=shop.keys.admin))["data"]["order"]


async def until_status(shop: Shop, order: dict[str, Any], status: str, within: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while True:
        seen = await order_of(shop, order)
        if seen["status"] == status or time.monotonic() > deadline:
            return seen
        await asyncio.sleep(0.1)


async def pay(shop: Shop, order: dict[str, Any], reference: str) -> dict[str, Any]:
    return (await shop.gql(PAY, {"id": order["id"], "reference": reference}, key=shop.keys.admin))["data"]["payOrder"]


async def test_an_unpaid_order_expires_and_its_codes_come_back(swept: Shop) -> None:
    coins = await swept.shelf.card_codes(3)
    order = await place(swept, coins, 2)

    seen = await until_status(swept, order, "EXPIRED")

    assert seen["status"] == "EXPIRED" and seen["expiresAt"] is None
    assert seen["events"][-1] == EXPIRED and len(seen["events"]) == 3
    assert await swept.ledger.codes(coins) == {"AVAILABLE": 3}
    assert await swept.ledger.allocations(coins) == Counter({("CODE", "RELEASED"): 2})
    assert await swept.stock(coins) == {"available": 3, "reserved": 0, "presale": 0}


async def test_expired_codes_are_released_once_even_after_someone_else_takes_them(swept: Shop) -> None:
    coins = await swept.shelf.card_codes(1)
    first = await place(swept, coins)
    await until_status(swept, first, "EXPIRED")
    second = await place(swept, coins)
    assert (await pay(swept, second, "WX-1"))["order"]["status"] == "PAID"

    await asyncio.sleep(1.0)  # five sweeps
    late_cancel = (await swept.gql(CANCEL, {"id": first["id"]}, key=first["token"]))["data"]["cancelOrder"]

    assert late_cancel == {"order": {"status": "EXPIRED"}, "userErrors": [{"field": "orderId", "code": "INVALID_STATE"}]}
    assert await swept.ledger.codes(coins) == {"RESERVED": 1}
    assert await swept.ledger.allocations(coins) == Counter({("CODE", "RELEASED"): 1, ("CODE", "HELD"): 1})
    assert [e["toStatus"] for e in (await order_of(swept, first))["events"]] == ["PENDING_RISK", "PENDING_PAYMENT", "EXPIRED"]


async def test_expired_counter_units_and_quota_are_released_once(swept: Shop) -> None:
    video = await swept.shelf.counter(5)
    await swept.shelf.set_quota("web", video, 5)
    first = await place(swept, video, 2, buyer=TOP_UP)
    await until_status(swept, first, "EXPIRED")
    second = await place(swept, video, 3, buyer=TOP_UP)
    await pay(swept, second, "WX-2")

    await asyncio.sleep(1.0)

    assert await swept.ledger.counter(video) == (5, 3)
    assert await swept.stock(video) == {"available": 2, "reserved": 3, "presale": 0}
    assert await swept.ledger.allocations(video) == Counter({("COUNTER", "RELEASED"): 2, ("COUNTER", "HELD"): 3})


async def test_paying_an_expired_order_does_not_revive_it(swept: Shop) -> None:
    coins = await swept.shelf.card_codes(1)
    order = await place(swept, coins)
    await until_status(swept, order, "EXPIRED")

    paid = await pay(swept, order, "WX-LATE")

    # The payment is owed back (see test_payments_owed_back.py); the codes stay released.
    assert paid == {"order": {"status": "EXPIRED"}, "userErrors": [{"field": "orderId", "code": "REFUND_REQUESTED"}]}
    assert await swept.ledger.codes(coins) == {"AVAILABLE": 1}


async def test_a_paid_order_does_not_expire(swept: Shop) -> None:
    coins = await swept.shelf.card_codes(1)
    order = await place(swept, coins)
    await pay(swept, order, "WX-3")

    await asyncio.sleep(1.5)

    assert (await order_of(swept, order))["status"] == "PAID"
    assert await swept.ledger.codes(coins) == {"RESERVED": 1}


async def test_a_payment_after_the_deadline_expires_the_order_before_the_sweep_does(unswept: Shop) -> None:
    coins = await unswept.shelf.card_codes(2)
    order = await place(unswept, coins, 2)
    await asyncio.sleep(1.2)

    paid = await pay(unswept, order, "WX-LATE")
    cancelled = (await unswept.gql(CANCEL, {"id": order["id"]}, key=order["token"]))["data"]["cancelOrder"]

    assert paid == {"order": {"status": "EXPIRED"}, "userErrors": [{"field": "orderId", "code": "REFUND_REQUESTED"}]}
    assert cancelled["userErrors"] == [{"field": "orderId", "code": "INVALID_STATE"}]
    assert (await order_of(unswept, order))["events"][-1] == EXPIRED
    assert await unswept.ledger.codes(coins) == {"AVAILABLE": 2}
    assert await unswept.ledger.allocations(coins) == Counter({("CODE", "RELEASED"): 2})


async def test_an_order_expires_after_the_configured_time(unswept: Shop) -> None:
    coins = await unswept.shelf.card_codes(1)

    order = await place(unswept, coins)

    created, expires = (datetime.fromisoformat(order[name]) for name in ("createdAt", "expiresAt"))
    assert expires - created == timedelta(seconds=1)
