"""setTopUpStock spreads a top-up SKU's units over its slots (QUANYI_STOCK_SLOTS), and
buyers and the catalog see one SKU: its figures are the sums over the slots."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from models import StockLevel
from tests.e2e.shop import Shop, StockedSku, open_shop, order_input

SET_STOCK = """
mutation Set($sku: ID!, $onHand: Int!) {
  setTopUpStock(input: { skuId: $sku, onHand: $onHand }) {
    sku { stock { available reserved } }
    userErrors { field code }
  }
}
"""
PLACE = """
mutation Place($input: PlaceOrderInput!) { placeOrder(input: $input) { order { status } userErrors { field code } } }
"""
TOP_UP = {"phone": "13800138000", "rechargeAccount": "qq:10001"}


@pytest.fixture(scope="module")
async def shop(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Shop]:
    async with open_shop(tmp_path_factory.mktemp("top-up-slots"), stock_slots=4) as opened:
        yield opened


async def _slots(shop: Shop, sku: StockedSku) -> list[tuple[int, int, int]]:
    async with shop.db.fresh_sessions() as session:
        found = await session.execute(
            select(StockLevel.slot, StockLevel.on_hand, StockLevel.reserved)
            .where(StockLevel.sku_id == sku.pk).order_by(StockLevel.slot)
        )
        return [tuple(row) for row in found]  # type: ignore[misc]


async def _set(shop: Shop, sku: StockedSku, on_hand: int) -> dict[str, object]:
    answer = await shop.gql(SET_STOCK, {"sku": sku.gid, "onHand": on_hand}, key=shop.keys.admin)
    return answer["data"]["setTopUpStock"]


async def test_setting_the_stock_spreads_it_over_the_configured_slots(shop: Shop) -> None:
    video = await shop.shelf.counter(0)

    answer = await _set(shop, video, 10)

    assert answer == {"sku": {"stock": {"available": 10, "reserved": 0}}, "userErrors": []}
    assert await _slots(shop, video) == [(0, 3, 0), (1, 3, 0), (2, 2, 0), (3, 2, 0)]


async def test_buyers_and_the_catalog_see_the_sums_over_the_slots(shop: Shop) -> None:
    video = await shop.shelf.counter(0)
    await _set(shop, video, 10)

    # 7 units: more than any slot holds, so the order draws from several.
    placed = await shop.gql(PLACE, {"input": order_input((video, 7), buyer=TOP_UP)})

    assert placed["data"]["placeOrder"]["userErrors"] == []
    assert await shop.stock(video) == {"available": 3, "reserved": 7, "presale": 0}
    assert await shop.ledger.counter(video) == (10, 7)
    refused = await shop.gql(PLACE, {"input": order_input((video, 4), buyer=TOP_UP)})
    assert refused["data"]["placeOrder"]["userErrors"] == [{"field": "lines.0.quantity", "code": "OUT_OF_STOCK"}]


async def test_the_stock_cannot_be_set_below_what_orders_hold_and_nothing_moves(shop: Shop) -> None:
    video = await shop.shelf.counter(0)
    await _set(shop, video, 8)
    assert (await shop.gql(PLACE, {"input": order_input((video, 3), buyer=TOP_UP)}))["data"]["placeOrder"]["userErrors"] == []
    before = await _slots(shop, video)

    answer = await _set(shop, video, 2)

    assert answer == {"sku": None, "userErrors": [{"field": "onHand", "code": "BELOW_RESERVED"}]}
    assert await _slots(shop, video) == before
    assert (await _set(shop, video, 3))["userErrors"] == []
    assert sum(on_hand for _, on_hand, _ in await _slots(shop, video)) == 3
