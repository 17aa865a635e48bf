"""Every change of stock reaches `stockChanged`: reservations, sales, releases, imports,
presale served, refunds and quota changes. A live view never keeps a stale figure."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from suppliers.base import Outcome
from tests.e2e.shop import StockedSku, order_input
from tests.graphql.selling_shop import SellingShop, open_selling_shop

PLACE = """
mutation Place($input: PlaceOrderInput!) {
  placeOrder(input: $input) { order { id status } accessToken userErrors { field code } }
}
"""
CANCEL = "mutation Cancel($id: ID!) { cancelOrder(orderId: $id) { order { status } userErrors { code } } }"
IMPORT = """
mutation Import($sku: ID!, $codes: [CardCodeInput!]!) {
  importCardCodes(skuId: $sku, codes: $codes) { imported userErrors { code } }
}
"""
SET_QUOTA = """
mutation Quota($input: SetChannelQuotaInput!) { setChannelQuota(input: $input) { userErrors { code } } }
"""
TOP_UP = {"phone": "13800138000", "rechargeAccount": "qq:10001"}


@pytest.fixture(scope="module")
async def shop(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[SellingShop]:
    async with open_selling_shop(tmp_path_factory.mktemp("stock-events")) as opened:
        yield opened


async def place(shop: SellingShop, *lines: tuple[StockedSku, int]) -> dict[str, Any]:
    answer = await shop.gql(PLACE, {"input": order_input(*lines, buyer=TOP_UP)})
    placed = answer["data"]["placeOrder"]
    assert placed["userErrors"] == [], placed
    return placed


def figures(available: int, reserved: int) -> dict[str, int]:
    return {"available": available, "reserved": reserved}


async def test_selling_reserved_codes_clears_their_reserved_figure(shop: SellingShop) -> None:
    coins = await shop.sealed_codes(5)
    async with shop.following("web", coins) as feed:
        order = await place(shop, (coins, 2))
        reserved = await feed.figures(coins)

        assert await shop.pay(order["order"]["id"]) == "PAID"
        await shop.fulfil()

        assert reserved == {coins: figures(3, 2)}
        assert await feed.figures(coins) == {coins: figures(3, 0)}
        assert await shop.ledger.codes(coins) == {"AVAILABLE": 3, "SOLD": 2}


async def test_a_top_up_that_succeeded_clears_its_reserved_figure(shop: SellingShop) -> None:
    video = await shop.supplied(await shop.shelf.counter(10))
    shop.top_ups(Outcome.SUCCEEDED)
    async with shop.following("web", video) as feed:
        order = await place(shop, (video, 3))
        reserved = await feed.figures(video)

        await shop.pay(order["order"]["id"])
        await shop.fulfil()

        assert reserved == {video: figures(7, 3)}
        assert await feed.figures(video) == {video: figures(7, 0)}
        assert await shop.ledger.counter(video) == (7, 0)


async def test_a_bundle_sold_clears_the_reserved_figures_of_its_components(shop: SellingShop) -> None:
    coins = await shop.sealed_codes(5)
    video = await shop.supplied(await shop.shelf.counter(10))
    pack = await shop.shelf.bundle((coins, 1), (video, 2))
    shop.top_ups(Outcome.SUCCEEDED)
    async with shop.following("web", coins, video, pack) as feed:
        order = await place(shop, (pack, 2))
        reserved = await feed.figures(coins, video, pack)

        await shop.pay(order["order"]["id"])
        await shop.fulfil()

        assert reserved == {coins: figures(3, 2), video: figures(6, 4), pack: figures(3, 0)}
        assert await feed.figures(coins, video, pack) == {coins: figures(3, 0), video: figures(6, 0), pack: figures(3, 0)}


async def test_a_refund_gives_the_units_back_to_live_views(shop: SellingShop) -> None:
    video = await shop.supplied(await shop.shelf.counter(10))
    shop.top_ups(Outcome.FAILED)
    async with shop.following("web", video) as feed:
        order = await place(shop, (video, 3))
        reserved = await feed.figures(video)

        await shop.pay(order["order"]["id"])
        await shop.fulfil()

        assert reserved == {video: figures(7, 3)}
        assert await feed.figures(video) == {video: figures(10, 0)}


async def test_cancelling_and_expiring_give_the_units_back_to_live_views(shop: SellingShop) -> None:
    coins = await shop.shelf.card_codes(5)
    async with shop.following("web", coins) as feed:
        first = await place(shop, (coins, 2))
        second = await place(shop, (coins, 1))
        reserved = await feed.figures(coins)
        if reserved != {coins: figures(2, 3)}:  # the two reservations reached the feed apart
            reserved = await feed.figures(coins)

        await shop.gql(CANCEL, {"id": first["order"]["id"]}, key=first["accessToken"])
        after_cancel = await feed.figures(coins)
        if after_cancel == reserved:  # the second reservation's own change, sent again, came first
            after_cancel = await feed.figures(coins)
        assert await shop.expire(second["order"]["id"]) == 1
        after_expiry = await feed.figures(coins)

        assert reserved == {coins: figures(2, 3)}
        assert (after_cancel, after_expiry) == ({coins: figures(4, 1)}, {coins: figures(5, 0)})


async def test_imported_codes_and_the_presale_they_serve_reach_live_views(shop: SellingShop) -> None:
    empty = await shop.shelf.card_codes(0, presale_cap=5)
    async with shop.following("web", empty) as feed:
        await place(shop, (empty, 2))  # on presale: nothing reserved yet
        on_presale = await feed.figures(empty)

        answer = await shop.gql(IMPORT, {"sku": empty.gid, "codes": [{"secret": f"EV-{n}-{empty.pk}"} for n in range(3)]},
                                key=shop.keys.admin)

        assert answer["data"]["importCardCodes"] == {"imported": 3, "userErrors": []}
        assert on_presale == {empty: figures(0, 0)}
        assert await feed.figures(empty) == {empty: figures(1, 2)}  # two went to the presale order


async def test_a_components_quota_moves_the_bundles_live_figure(shop: SellingShop) -> None:
    coins = await shop.shelf.card_codes(10)
    pack = await shop.shelf.bundle((coins, 2))
    async with shop.following("web", coins, pack) as feed:
        answer = await shop.gql(SET_QUOTA, {"input": {"channel": "web", "skuId": coins.gid, "quota": 4}}, key=shop.keys.admin)

        assert answer["data"]["setChannelQuota"]["userErrors"] == []
        assert await feed.figures(coins, pack) == {coins: figures(4, 0), pack: figures(2, 0)}
