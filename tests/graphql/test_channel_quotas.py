"""A channel's quota on a SKU: an order takes from it, bundles from their components' quotas
too, and whatever ends an order gives back exactly what it took, never more."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select

from models import ChannelQuota, OrderLine, QuotaUse
from schema.relay import decode_pk, encode_id
from suppliers.base import Outcome
from tests.e2e.shop import StockedSku, order_input
from tests.graphql.selling_shop import SellingShop, open_selling_shop

PLACE = """
mutation Place($input: PlaceOrderInput!) {
  placeOrder(input: $input) { order { id status } accessToken userErrors { field code } }
}
"""
CANCEL = "mutation Cancel($id: ID!) { cancelOrder(orderId: $id) { order { status } userErrors { code } } }"
REVIEW = """
mutation Review($id: ID!) { reviewOrder(orderId: $id, decision: REJECT) { order { status } userErrors { code } } }
"""
STATUS = "query Status($id: ID!) { order(id: $id) { status } }"
SET_QUOTA = """
mutation Quota($input: SetChannelQuotaInput!) {
  setChannelQuota(input: $input) { quota { quota used remaining } userErrors { code } }
}
"""
SKUS = """
query Skus($channel: String!, $id: ID!) {
  product(channel: $channel, id: $id) { skus { code stock { available } channelQuota { quota used remaining } } }
}
"""
CREATE_CAMPAIGN = """
mutation Create($input: CreateCampaignInput!) { createCampaign(input: $input) { campaign { id } userErrors { code } } }
"""
TOP_UP = {"phone": "13800138000", "rechargeAccount": "qq:10001"}
VIRTUAL = {"phone": "17012345678"}  # held for review by the demo's rules


@pytest.fixture(scope="module")
async def shop(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[SellingShop]:
    async with open_selling_shop(tmp_path_factory.mktemp("channel-quotas")) as opened:
        yield opened


async def place(
    shop: SellingShop, *lines: tuple[StockedSku, int], buyer: dict[str, Any] | None = None, coupon: str | None = None,
) -> dict[str, Any]:
    given = order_input(*lines, buyer=buyer or TOP_UP)
    answer = await shop.gql(PLACE, {"input": {**given, "couponCode": coupon} if coupon else given})
    return answer["data"]["placeOrder"]


async def set_quota(shop: SellingShop, sku: StockedSku, quota: int | None) -> dict[str, Any]:
    answer = await shop.gql(SET_QUOTA, {"input": {"channel": "web", "skuId": sku.gid, "quota": quota}}, key=shop.keys.admin)
    return answer["data"]["setChannelQuota"]


async def seen_on_web(shop: SellingShop, *skus: StockedSku) -> list[tuple[int, dict[str, int] | None]]:
    """What the web channel may sell of each SKU, and its quota, as an operator reads them."""
    answer = await shop.gql(SKUS, {"channel": "web", "id": encode_id("Product", shop.shelf.product_id)}, key=shop.keys.admin)
    by_code = {sku["code"]: sku for sku in answer["data"]["product"]["skus"]}
    return [(by_code[s.code]["stock"]["available"], by_code[s.code]["channelQuota"]) for s in skus]


async def status(shop: SellingShop, order: dict[str, Any]) -> str:
    return (await shop.gql(STATUS, {"id": order["order"]["id"]}, key=shop.keys.admin))["data"]["order"]["status"]


async def cancel(shop: SellingShop, order: dict[str, Any]) -> None:
    answer = await shop.gql(CANCEL, {"id": order["order"]["id"]}, key=order["accessToken"])
    assert answer["data"]["cancelOrder"] == {"order": {"status": "CANCELLED"}, "userErrors": []}


async def expire(shop: SellingShop, order: dict[str, Any]) -> None:
    assert await shop.expire(order["order"]["id"]) == 1
    assert await status(shop, order) == "EXPIRED"


async def reject(shop: SellingShop, order: dict[str, Any]) -> None:
    answer = await shop.gql(REVIEW, {"id": order["order"]["id"]}, key=shop.keys.admin)
    assert answer["data"]["reviewOrder"] == {"order": {"status": "REJECTED"}, "userErrors": []}


ENDINGS = {"cancelled": (cancel, TOP_UP), "expired": (expire, TOP_UP), "rejected on review": (reject, VIRTUAL)}


def quota_exceeded(line: int = 0) -> dict[str, Any]:
    return {"order": None, "accessToken": None, "userErrors": [{"field": f"lines.{line}.quantity", "code": "QUOTA_EXCEEDED"}]}


@pytest.mark.parametrize("ending", ENDINGS)
async def test_an_order_placed_before_the_quota_gives_none_of_it_back(shop: SellingShop, ending: str) -> None:
    end, buyer = ENDINGS[ending]
    coins = await shop.shelf.card_codes(30)
    before_the_quota = await place(shop, (coins, 5), buyer=buyer)
    await set_quota(shop, coins, 10)
    under_the_quota = await place(shop, (coins, 10))

    await end(shop, before_the_quota)
    beyond = await place(shop, (coins, 5))

    assert under_the_quota["userErrors"] == []
    assert beyond == quota_exceeded()
    assert await seen_on_web(shop, coins) == [(0, {"quota": 10, "used": 10, "remaining": 0})]
    assert await shop.ledger.codes(coins) == {"AVAILABLE": 20, "RESERVED": 10}


@pytest.mark.parametrize("ending", ENDINGS)
async def test_an_order_under_the_quota_gives_back_what_it_took(shop: SellingShop, ending: str) -> None:
    end, buyer = ENDINGS[ending]
    coins = await shop.shelf.card_codes(30)
    await set_quota(shop, coins, 10)
    first = await place(shop, (coins, 4), buyer=buyer)
    second = await place(shop, (coins, 6))

    await end(shop, first)
    again = await place(shop, (coins, 4))

    assert [first["userErrors"], second["userErrors"], again["userErrors"]] == [[], [], []]
    assert await seen_on_web(shop, coins) == [(0, {"quota": 10, "used": 10, "remaining": 0})]


async def test_an_order_taken_from_a_removed_quota_gives_nothing_to_the_next_one(shop: SellingShop) -> None:
    coins = await shop.shelf.card_codes(30)
    await set_quota(shop, coins, 10)
    under_the_old_quota = await place(shop, (coins, 4))
    await set_quota(shop, coins, None)
    await set_quota(shop, coins, 10)
    under_the_new_quota = await place(shop, (coins, 10))

    await cancel(shop, under_the_old_quota)

    assert under_the_new_quota["userErrors"] == []
    assert await place(shop, (coins, 1)) == quota_exceeded()
    assert await seen_on_web(shop, coins) == [(0, {"quota": 10, "used": 10, "remaining": 0})]


async def test_a_bundle_takes_from_the_quota_of_each_component(shop: SellingShop) -> None:
    coins = await shop.shelf.card_codes(20)
    video = await shop.shelf.counter(20)
    pack = await shop.shelf.bundle((coins, 1), (video, 2))
    await set_quota(shop, coins, 3)
    await set_quota(shop, video, 4)
    before = await seen_on_web(shop, pack)

    two = await place(shop, (pack, 2))
    third = await place(shop, (pack, 1))
    one_coin = await place(shop, (coins, 1))

    assert before == [(2, None)]  # video: 4 units of quota make 2 packs
    assert two["userErrors"] == [] and one_coin["userErrors"] == []
    assert third == quota_exceeded()
    assert await seen_on_web(shop, pack, coins, video) == [
        (0, None), (0, {"quota": 3, "used": 3, "remaining": 0}), (0, {"quota": 4, "used": 4, "remaining": 0}),
    ]
    await cancel(shop, two)
    assert await seen_on_web(shop, pack, coins, video) == [
        (2, None), (2, {"quota": 3, "used": 1, "remaining": 2}), (4, {"quota": 4, "used": 0, "remaining": 4}),
    ]


async def test_a_bundle_with_a_quota_of_its_own_takes_from_it_as_well(shop: SellingShop) -> None:
    coins = await shop.shelf.card_codes(20)
    pack = await shop.shelf.bundle((coins, 2))
    await set_quota(shop, pack, 2)
    await set_quota(shop, coins, 10)

    first = await place(shop, (pack, 2))
    second = await place(shop, (pack, 1))

    assert first["userErrors"] == []
    assert second == quota_exceeded()
    assert await seen_on_web(shop, pack, coins) == [
        (0, {"quota": 2, "used": 2, "remaining": 0}), (6, {"quota": 10, "used": 4, "remaining": 6}),
    ]


async def test_a_refusal_names_the_line_whose_component_quota_is_used_up(shop: SellingShop) -> None:
    coins = await shop.shelf.card_codes(20)
    other = await shop.shelf.card_codes(20)
    pack = await shop.shelf.bundle((coins, 1))
    await set_quota(shop, coins, 1)

    assert await place(shop, (other, 1), (pack, 2)) == quota_exceeded(line=1)
    assert await shop.ledger.codes(other) == {"AVAILABLE": 20}


async def test_concurrent_orders_never_sell_beyond_a_quota(shop: SellingShop) -> None:
    coins = await shop.shelf.card_codes(40)
    await set_quota(shop, coins, 10)

    answers = await asyncio.gather(*(place(shop, (coins, 1)) for _ in range(30)))

    assert sorted(bool(a["order"]) for a in answers) == [False] * 20 + [True] * 10
    assert all(a == quota_exceeded() for a in answers if not a["order"])
    assert await shop.ledger.codes(coins) == {"AVAILABLE": 30, "RESERVED": 10}
    assert await seen_on_web(shop, coins) == [(0, {"quota": 10, "used": 10, "remaining": 0})]


async def test_concurrent_bundles_never_sell_beyond_a_component_quota(shop: SellingShop) -> None:
    coins = await shop.shelf.card_codes(40)
    pack = await shop.shelf.bundle((coins, 1))
    await set_quota(shop, coins, 5)

    answers = await asyncio.gather(*(place(shop, (pack, 1)) for _ in range(15)))

    assert sorted(bool(a["order"]) for a in answers) == [False] * 10 + [True] * 5
    assert all(a == quota_exceeded() for a in answers if not a["order"])
    assert await shop.ledger.codes(coins) == {"AVAILABLE": 35, "RESERVED": 5}
    assert await seen_on_web(shop, pack, coins) == [(0, None), (0, {"quota": 5, "used": 5, "remaining": 0})]


async def test_a_refunded_order_gives_back_its_quota_and_a_delivered_one_keeps_it(shop: SellingShop) -> None:
    video = await shop.supplied(await shop.shelf.counter(20))
    await set_quota(shop, video, 5)
    shop.top_ups(Outcome.FAILED)
    failing = await place(shop, (video, 3))
    await shop.pay(failing["order"]["id"])
    await shop.fulfil()
    shop.top_ups(Outcome.SUCCEEDED)
    delivered = await place(shop, (video, 3))
    await shop.pay(delivered["order"]["id"])
    await shop.fulfil()

    assert (await status(shop, failing), await status(shop, delivered)) == ("REFUNDED", "DELIVERED")
    assert await seen_on_web(shop, video) == [(2, {"quota": 5, "used": 3, "remaining": 2})]
    assert await place(shop, (video, 3)) == quota_exceeded()


async def test_a_quota_spread_over_slots_reads_as_one_and_sells_across_them(shop: SellingShop) -> None:
    coins = await shop.shelf.card_codes(30)
    set_to_ten = await set_quota(shop, coins, 10)  # over the shop's 8 slots: none holds 7

    seven = await place(shop, (coins, 7))
    raised = await set_quota(shop, coins, 12)
    lowered = await set_quota(shop, coins, 5)
    refused = await place(shop, (coins, 1))

    assert set_to_ten == {"quota": {"quota": 10, "used": 0, "remaining": 10}, "userErrors": []}
    assert seven["userErrors"] == []
    assert raised == {"quota": {"quota": 12, "used": 7, "remaining": 5}, "userErrors": []}
    assert lowered == {"quota": {"quota": 5, "used": 7, "remaining": 0}, "userErrors": []}
    assert refused == quota_exceeded()
    assert await seen_on_web(shop, coins) == [(0, {"quota": 5, "used": 7, "remaining": 0})]
    await cancel(shop, seven)
    assert await seen_on_web(shop, coins) == [(5, {"quota": 5, "used": 0, "remaining": 5})]
    assert (await place(shop, (coins, 5)))["userErrors"] == []
    assert await place(shop, (coins, 1)) == quota_exceeded()


async def test_orders_with_a_coupon_take_a_quota_spread_over_slots_the_same_way(shop: SellingShop) -> None:
    coins = await shop.shelf.card_codes(30)
    campaign = {"name": "配额券", "channel": "web", "code": "QUOTASLOTS", "skuIds": [coins.gid], "amountOff": "1.00"}
    created = await shop.gql(CREATE_CAMPAIGN, {"input": campaign}, key=shop.keys.admin)
    assert created["data"]["createCampaign"]["userErrors"] == []
    await set_quota(shop, coins, 10)  # over the shop's 8 slots: none holds 7

    seven = await place(shop, (coins, 7), coupon="QUOTASLOTS")
    rush = await asyncio.gather(*(place(shop, (coins, 1), coupon="QUOTASLOTS") for _ in range(8)))

    assert seven["userErrors"] == []
    assert sorted(bool(a["order"]) for a in rush) == [False] * 5 + [True] * 3
    assert all(a == quota_exceeded() for a in rush if not a["order"])
    assert await seen_on_web(shop, coins) == [(0, {"quota": 10, "used": 10, "remaining": 0})]


async def slot_of(shop: SellingShop, order: dict[str, Any]) -> int:
    """The quota slot a one-unit order took its unit from."""
    async with shop.db.sessions() as session:
        [slot] = await session.scalars(
            select(ChannelQuota.slot).join(QuotaUse, QuotaUse.quota_id == ChannelQuota.id)
            .join(OrderLine, OrderLine.id == QuotaUse.line_id)
            .where(OrderLine.order_id == decode_pk(order["order"]["id"], "Order"))
        )
        return slot


async def test_a_quota_lowered_below_what_is_used_sells_again_only_once_releases_bring_used_under_it(
    shop: SellingShop,
) -> None:
    coins = await shop.shelf.card_codes(30)
    await set_quota(shop, coins, 8)
    held = [await place(shop, (coins, 1)) for _ in range(8)]  # one unit in each of the shop's 8 slots
    await set_quota(shop, coins, 10)
    lowered = await set_quota(shop, coins, 4)  # the shares of slots 0-3 are 1, of the others 0
    by_slot = sorted([(await slot_of(shop, order), order) for order in held], key=lambda pair: pair[0])
    sold: list[int] = []
    remaining: list[dict[str, int] | None] = []

    for slot, order in by_slot:  # the slots that kept a share first: the worst case
        await (cancel if slot % 2 else expire)(shop, order)
        placed = 0
        while (await place(shop, (coins, 1)))["order"]:
            placed += 1
        sold.append(placed)
        remaining.append((await seen_on_web(shop, coins))[0][1])

    assert lowered == {"quota": {"quota": 4, "used": 8, "remaining": 0}, "userErrors": []}
    assert sold == [0, 0, 0, 0, 1, 1, 1, 1]
    assert [seen and seen["used"] for seen in remaining] == [7, 6, 5, 4, 4, 4, 4, 4]
    raised = await set_quota(shop, coins, 6)
    assert raised == {"quota": {"quota": 6, "used": 4, "remaining": 2}, "userErrors": []}
    assert [bool((await place(shop, (coins, 1)))["order"]) for _ in range(3)] == [True, True, False]
    assert await seen_on_web(shop, coins) == [(0, {"quota": 6, "used": 6, "remaining": 0})]
    assert await shop.ledger.codes(coins) == {"AVAILABLE": 24, "RESERVED": 6}
