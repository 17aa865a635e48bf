"""The sold-out gate: late buyers of a sold-out SKU are refused without the database, and
stock that comes back is on sale again at once, or within a second when no event said so."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from domain.catalog import CodeStatus
from models import Sku
from tests.e2e.shop import StockedSku, order_input
from tests.graphql.selling_shop import SellingShop, open_selling_shop
from tests.services import catalog_rows as rows
from tests.support import StatementCounter

PLACE = """
mutation Place($input: PlaceOrderInput!) {
  placeOrder(input: $input) { order { id status } accessToken userErrors { field code } }
}
"""
CANCEL = "mutation Cancel($id: ID!) { cancelOrder(orderId: $id) { order { status } userErrors { code } } }"
SET_QUOTA = """
mutation Quota($input: SetChannelQuotaInput!) { setChannelQuota(input: $input) { userErrors { code } } }
"""
IMPORT = """
mutation Import($skuId: ID!, $codes: [CardCodeInput!]!) {
  importCardCodes(skuId: $skuId, codes: $codes) { imported userErrors { code } }
}
"""

_keys = itertools.count()
_phones = itertools.count(13700000000)


@pytest.fixture(scope="module")
async def shop(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[SellingShop]:
    async with open_selling_shop(tmp_path_factory.mktemp("sold-out-gate")) as opened:
        yield opened


@pytest.fixture(scope="module")
def statements(shop: SellingShop) -> StatementCounter:
    counter = StatementCounter()
    database = shop.app.state.db
    counter.attach(database.engine)
    if database.read_engine is not database.engine:
        counter.attach(database.read_engine)
    if database.driver is not None:
        counter.attach_driver(database.driver)
    return counter


async def place(shop: SellingShop, sku: StockedSku, *, key: str | None = None, phone: str | None = None) -> dict[str, Any]:
    variables = {"input": order_input((sku, 1), buyer={"phone": phone or str(next(_phones))})}
    variables["input"]["idempotencyKey"] = key or f"sold-out-gate-{next(_keys):08d}"
    answer = await shop.gql(PLACE, variables)
    return answer["data"]["placeOrder"]


def codes(answer: dict[str, Any]) -> list[str]:
    return [error["code"] for error in answer["userErrors"]] or ["PLACED"]


async def sold_out(shop: SellingShop, count: int = 1) -> tuple[StockedSku, list[dict[str, Any]]]:
    """A SKU whose `count` codes are sold, and the gate closed on it by a buyer too many."""
    sku = await shop.sealed_codes(count)
    placed = [await place(shop, sku) for _ in range(count)]
    assert codes(await place(shop, sku)) == ["OUT_OF_STOCK"]
    return sku, placed


async def within_a_second(attempt: Callable[[], Awaitable[dict[str, Any]]]) -> tuple[dict[str, Any], int]:
    """Attempts until one is placed, for at most 1.5 s; the answer and the refusals before it."""
    refusals = 0
    for _ in range(30):
        answer = await attempt()
        if answer["order"] is not None:
            return answer, refusals
        assert codes(answer) == ["OUT_OF_STOCK"]
        refusals += 1
        await asyncio.sleep(0.05)
    raise AssertionError(f"still refused after {refusals} attempts")


async def test_a_late_buyer_is_refused_without_a_statement_on_postgresql(
    shop: SellingShop, statements: StatementCounter
) -> None:
    sku, _ = await sold_out(shop)

    late, count = await statements.measure(place(shop, sku))

    assert late == {"order": None, "accessToken": None,
                    "userErrors": [{"field": "lines.0.quantity", "code": "OUT_OF_STOCK"}]}
    # SQLite looks the key up first (one statement); PostgreSQL leaves keys to the order's insert.
    assert count == (0 if shop.app.state.db.driver is not None else 1)


async def test_a_retry_of_a_placed_order_is_answered_with_it_while_the_sku_is_sold_out(shop: SellingShop) -> None:
    sku = await shop.sealed_codes(1)
    phone = str(next(_phones))
    first = await place(shop, sku, key="sold-out-gate-retry-0001", phone=phone)
    assert codes(await place(shop, sku)) == ["OUT_OF_STOCK"]

    again = await place(shop, sku, key="sold-out-gate-retry-0001", phone=phone)

    assert again["order"] == first["order"] and again["userErrors"] == []


async def test_cancelling_an_order_puts_its_code_back_on_sale_at_once(shop: SellingShop) -> None:
    sku, [held] = await sold_out(shop)

    await shop.gql(CANCEL, {"id": held["order"]["id"]}, key=held["accessToken"])
    answer = await place(shop, sku)

    assert codes(answer) == ["PLACED"]


async def test_an_expired_order_puts_its_code_back_on_sale(shop: SellingShop) -> None:
    """The expiry sweep runs beside requests: its stock event reaches the gate through the broker."""
    sku, [held] = await sold_out(shop)

    assert await shop.expire(held["order"]["id"]) == 1
    answer, _ = await within_a_second(lambda: place(shop, sku))

    assert codes(answer) == ["PLACED"]


async def test_imported_codes_are_on_sale_at_once(shop: SellingShop) -> None:
    sku, _ = await sold_out(shop)

    imported = await shop.gql(IMPORT, {"skuId": sku.gid, "codes": [{"secret": f"GATE-{sku.pk}-0001"}]},
                              key=shop.keys.admin)
    answer = await place(shop, sku)

    assert imported["data"]["importCardCodes"] == {"imported": 1, "userErrors": []}
    assert codes(answer) == ["PLACED"]


async def test_a_raised_quota_reopens_the_gate(shop: SellingShop) -> None:
    sku = await shop.sealed_codes(3)
    await shop.shelf.set_quota("web", sku, 1)
    await place(shop, sku)
    assert codes(await place(shop, sku)) == ["QUOTA_EXCEEDED"]  # a quota closes no gate
    await shop.gql(SET_QUOTA, {"input": {"channel": "web", "skuId": sku.gid, "quota": 3}}, key=shop.keys.admin)

    assert codes(await place(shop, sku)) == ["PLACED"]


async def test_stock_that_comes_back_unannounced_is_on_sale_within_a_second(shop: SellingShop) -> None:
    """A row changed by hand, or an event lost with a Redis restart: no event reaches the gate."""
    sku, _ = await sold_out(shop)
    async with shop.db.sessions() as session, session.begin():
        row = await session.get_one(Sku, sku.pk)
        rows.codes(session, row, CodeStatus.AVAILABLE, 1)

    answer, refusals = await within_a_second(lambda: place(shop, sku))

    assert codes(answer) == ["PLACED"]
    assert refusals <= 25  # refused from memory for at most about a second


async def test_a_sold_out_notice_that_predates_the_stock_coming_back_closes_nothing(shop: SellingShop) -> None:
    """A close decided before a stock event (told late by another process, say) is not applied."""
    sku, _ = await sold_out(shop)
    gate, web = shop.app.state.gate, shop.app.state.terms.cached_channel("web").id
    imported = await shop.gql(IMPORT, {"skuId": sku.gid, "codes": [{"secret": f"GATE-{sku.pk}-0002"}]},
                              key=shop.keys.admin)
    assert imported["data"]["importCardCodes"]["imported"] == 1

    await gate.sold_out(web, sku.pk, since=0.0)  # an attempt that looked before the import

    assert gate.refuses(web, [sku.pk]) is None
    assert codes(await place(shop, sku)) == ["PLACED"]
