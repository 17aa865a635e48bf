"""Purchase limits (限购): operators cap what one buyer buys of a SKU on a channel, per order and
per period; a refusal is a PURCHASE_LIMIT userError that reserves nothing, and an order that
ends unsold gives its units back to the buyer's allowance."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from schema.relay import encode_id
from tests.e2e.shop import Shop, StockedSku, open_shop, order_input
from tests.graphql.catalog_support import DemoCatalog
from tests.support import TEST_DATABASE_URL, GraphQLClient, StatementCounter

SET_LIMIT = """
mutation Limit($input: SetPurchaseLimitInput!) {
  setPurchaseLimit(input: $input) {
    purchaseLimit { channel perOrder perBuyer period startsAt }
    userErrors { field message code }
  }
}
"""
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
LIMITS_ON_SKUS = """
query Limits($channel: String!, $id: ID!) {
  product(channel: $channel, id: $id) { skus { code purchaseLimit { channel perOrder perBuyer period } } }
}
"""
# One phone, as five buyers might type it.
SPELLINGS = ["15899990000", "158 9999 0000", "+86 158-9999-0000", "0086 15899990000", "１５８９９９９００００"]


@pytest.fixture(scope="module")
async def shop(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Shop]:
    async with open_shop(tmp_path_factory.mktemp("purchase-limits")) as opened:
        yield opened


async def limit(shop: Shop, sku: StockedSku, channel: str = "web", **caps: Any) -> dict[str, Any]:
    answer = await shop.gql(SET_LIMIT, {"input": {"channel": channel, "skuId": sku.gid, **caps}}, key=shop.keys.admin)
    return answer["data"]["setPurchaseLimit"]


async def place(
    shop: Shop, sku: StockedSku, quantity: int = 1, *, phone: str = "13800138000", channel: str = "web",
    key: str | None = None, idempotency_key: str | None = None,
) -> dict[str, Any]:
    given = order_input((sku, quantity), channel=channel, key=idempotency_key, buyer={"phone": phone})
    return (await shop.gql(PLACE, {"input": given}, key=key))["data"]["placeOrder"]


def codes(placed: dict[str, Any]) -> list[str]:
    return [error["code"] for error in placed["userErrors"]]


async def test_an_operator_sets_a_limit_that_buyers_read_on_the_sku_of_that_channel(shop: Shop) -> None:
    flash = await shop.shelf.card_codes(3)

    answer = await limit(shop, flash, perOrder=1, perBuyer=1)
    product = encode_id("Product", shop.shelf.product_id)
    on_web = await shop.gql(LIMITS_ON_SKUS, {"channel": "web", "id": product})
    on_mini = await shop.gql(LIMITS_ON_SKUS, {"channel": "mini", "id": product})

    assert answer == {
        "purchaseLimit": {"channel": "web", "perOrder": 1, "perBuyer": 1, "period": "DAY", "startsAt": None},
        "userErrors": [],
    }
    assert next(s for s in on_web["data"]["product"]["skus"] if s["code"] == flash.code)["purchaseLimit"] == {
        "channel": "web", "perOrder": 1, "perBuyer": 1, "period": "DAY",
    }
    assert next(s for s in on_mini["data"]["product"]["skus"] if s["code"] == flash.code)["purchaseLimit"] is None


async def test_an_order_above_the_per_order_maximum_is_refused_and_reserves_nothing(shop: Shop) -> None:
    coins = await shop.shelf.card_codes(10)
    await limit(shop, coins, perOrder=2)
    orders_before = await shop.ledger.order_count()

    over = await place(shop, coins, 3)
    within = await place(shop, coins, 2)

    assert over == {"order": None, "accessToken": None, "userErrors": [
        {"field": "lines.0.quantity", "message": "at most 2 of this SKU in one order", "code": "PURCHASE_LIMIT"},
    ]}
    assert within["userErrors"] == []
    assert await shop.ledger.order_count() == orders_before + 1
    assert await shop.ledger.codes(coins) == {"AVAILABLE": 8, "RESERVED": 2}


async def test_one_per_buyer_sells_one_to_a_buyer_trying_ten_times_at_once_in_five_spellings(shop: Shop) -> None:
    flash = await shop.shelf.card_codes(10)
    await limit(shop, flash, perBuyer=1)

    answers = await asyncio.gather(*(place(shop, flash, phone=SPELLINGS[n % 5]) for n in range(10)))

    assert sorted(code for answer in answers for code in codes(answer) or ["PLACED"]) == ["PLACED"] + ["PURCHASE_LIMIT"] * 9
    assert await shop.ledger.codes(flash) == {"AVAILABLE": 9, "RESERVED": 1}
    assert (await place(shop, flash, phone="13900001111"))["userErrors"] == []  # another buyer still buys


async def test_each_contact_of_an_order_is_a_buyer_of_its_own(shop: Shop) -> None:
    flash = await shop.shelf.card_codes(10)
    await limit(shop, flash, perBuyer=1)
    first = order_input((flash, 1), buyer={"phone": "13700001111", "deviceId": "phone-of-li"})
    same_device = order_input((flash, 1), buyer={"phone": "13700002222", "deviceId": "PHONE-OF-LI"})

    assert (await shop.gql(PLACE, {"input": first}))["data"]["placeOrder"]["userErrors"] == []
    assert codes((await shop.gql(PLACE, {"input": same_device}))["data"]["placeOrder"]) == ["PURCHASE_LIMIT"]


async def test_a_cancelled_order_gives_its_units_back_to_the_buyers_limit(shop: Shop) -> None:
    flash = await shop.shelf.card_codes(10)
    await limit(shop, flash, perBuyer=2)
    first = await place(shop, flash, 2)
    refused_while_held = await place(shop, flash, 1)

    cancelled = await shop.gql(CANCEL, {"id": first["order"]["id"]}, key=first["accessToken"])
    again = await place(shop, flash, 2)
    beyond = await place(shop, flash, 1)

    assert codes(refused_while_held) == ["PURCHASE_LIMIT"]
    assert cancelled["data"]["cancelOrder"] == {"order": {"status": "CANCELLED"}, "userErrors": []}
    assert again["userErrors"] == []
    assert codes(beyond) == ["PURCHASE_LIMIT"]
    assert await shop.ledger.codes(flash) == {"AVAILABLE": 8, "RESERVED": 2}


async def test_a_paid_order_keeps_counting(shop: Shop) -> None:
    flash = await shop.shelf.card_codes(10)
    await limit(shop, flash, perBuyer=1)
    bought = await place(shop, flash)

    paid = await shop.gql(PAY, {"id": bought["order"]["id"], "reference": "WX-LIMIT-1"}, key=shop.keys.admin)

    assert paid["data"]["payOrder"]["userErrors"] == []
    assert codes(await place(shop, flash)) == ["PURCHASE_LIMIT"]


async def test_an_idempotent_retry_of_a_placed_order_is_answered_not_refused(shop: Shop) -> None:
    flash = await shop.shelf.card_codes(10)
    await limit(shop, flash, perBuyer=1)

    first = await place(shop, flash, phone=SPELLINGS[0], idempotency_key="limit-retry-0000000001")
    retries = await asyncio.gather(*(
        place(shop, flash, phone=SPELLINGS[n], idempotency_key="limit-retry-0000000001") for n in range(5)
    ))

    assert first["userErrors"] == []
    assert all(retry["userErrors"] == [] and retry["order"]["id"] == first["order"]["id"] for retry in retries)
    assert await shop.ledger.codes(flash) == {"AVAILABLE": 9, "RESERVED": 1}


async def test_duplicates_sent_at_once_place_one_order_and_none_is_told_the_limit_is_reached(shop: Shop) -> None:
    # The buyer's count is taken before the order's key is checked: a duplicate still in
    # flight must end as a retry of the one order, never as a buyer over the limit.
    flash = await shop.shelf.card_codes(10)
    await limit(shop, flash, perBuyer=1)

    answers = await asyncio.gather(*(
        place(shop, flash, phone=SPELLINGS[n % 5], idempotency_key="limit-twins-000000001") for n in range(8)
    ))

    placed = {answer["order"]["id"] for answer in answers if answer["order"] is not None}
    assert len(placed) == 1
    assert all(codes(answer) in ([], ["CONFLICT"]) for answer in answers), answers
    assert await shop.ledger.codes(flash) == {"AVAILABLE": 9, "RESERVED": 1}


async def test_a_limit_holds_on_its_channel_only_and_partners_orders_count_per_buyer(shop: Shop) -> None:
    flash = await shop.shelf.card_codes(10)
    await limit(shop, flash, channel="taobao", perBuyer=1)

    on_web = [await place(shop, flash) for _ in range(2)]
    on_taobao = [await place(shop, flash, channel="taobao", key=shop.keys.taobao, phone=p)
                 for p in ("13600001111", "13600001111", "13600002222")]

    assert [codes(answer) for answer in on_web] == [[], []]
    assert [codes(answer) for answer in on_taobao] == [[], ["PURCHASE_LIMIT"], []]


async def test_removing_a_limit_lets_the_buyer_buy_again(shop: Shop) -> None:
    flash = await shop.shelf.card_codes(10)
    await limit(shop, flash, perBuyer=1)
    await place(shop, flash)

    removed = await limit(shop, flash, perOrder=None, perBuyer=None)

    assert removed == {"purchaseLimit": None, "userErrors": []}
    assert (await place(shop, flash))["userErrors"] == []


async def test_a_sale_counts_from_its_start(shop: Shop) -> None:
    flash = await shop.shelf.card_codes(10)

    sale = await limit(shop, flash, perBuyer=1, period="SALE", startsAt="2026-11-11T00:00:00+08:00")
    changed = await limit(shop, flash, perBuyer=2, period="SALE")  # the sale goes on: its start stays
    await place(shop, flash)

    assert sale["purchaseLimit"]["startsAt"] == "2026-11-10T16:00:00+00:00"
    assert changed["purchaseLimit"] == {
        "channel": "web", "perOrder": None, "perBuyer": 2, "period": "SALE", "startsAt": "2026-11-10T16:00:00+00:00",
    }
    assert codes(await place(shop, flash, 2)) == ["PURCHASE_LIMIT"]


@pytest.mark.parametrize(("caps", "error"), [
    ({"perOrder": 0}, {"field": "perOrder", "code": "INVALID_LIMIT"}),
    ({"perBuyer": -1}, {"field": "perBuyer", "code": "INVALID_LIMIT"}),
])
async def test_a_limit_that_makes_no_sense_is_refused(shop: Shop, caps: dict[str, Any], error: dict[str, str]) -> None:
    flash = await shop.shelf.card_codes(1)

    answer = await limit(shop, flash, **caps)

    assert answer["purchaseLimit"] is None
    assert [{"field": e["field"], "code": e["code"]} for e in answer["userErrors"]] == [error]


async def test_a_sale_start_without_a_time_zone_is_refused_at_the_door(shop: Shop) -> None:
    flash = await shop.shelf.card_codes(1)
    variables = {"input": {"channel": "web", "skuId": flash.gid, "perBuyer": 1, "period": "SALE",
                           "startsAt": "2026-11-11T00:00:00"}}

    answer = await shop.gql(SET_LIMIT, variables, key=shop.keys.admin)

    assert answer.get("data") is None
    [error] = answer["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT" and "startsAt" in error["message"]


async def test_only_operators_set_limits(shop: Shop) -> None:
    flash = await shop.shelf.card_codes(1)
    variables = {"input": {"channel": "web", "skuId": flash.gid, "perBuyer": 1}}

    anonymous = await shop.gql(SET_LIMIT, variables)
    storefront = await shop.gql(SET_LIMIT, variables, key=shop.keys.web)

    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert storefront["errors"][0]["extensions"]["code"] == "FORBIDDEN"


# On the suite's shared app (the demo catalog): what limits cost the order's transaction.

DEMO_PLACE = """
mutation Place($input: PlaceOrderInput!) { placeOrder(input: $input) { order { status } userErrors { code } } }
"""


async def test_the_demo_flash_sale_is_one_per_buyer_and_only_limited_orders_pay_statements_for_it(
    gql: GraphQLClient, statements: StatementCounter, demo: DemoCatalog,
) -> None:
    def order(code: str, phone: str) -> dict[str, Any]:
        sku = StockedSku(demo.skus[code], code)
        return {"input": order_input((sku, 1), buyer={"phone": phone})}

    # A first order warms what the process loads once (risk rules, reference data), so the
    # two measured below differ only by what each order itself costs.
    await gql(DEMO_PLACE, order("NE-15", "13500002222"))
    await gql(DEMO_PLACE, order("STEAM-100", "13500002222"))
    unlimited, unlimited_count = await statements.measure(gql(DEMO_PLACE, order("NE-15", "13500001111")))
    unlimited_seen = list(statements.seen)
    flash, flash_count = await statements.measure(gql(DEMO_PLACE, order("STEAM-100", "13500001111")))
    again = await gql(DEMO_PLACE, order("STEAM-100", "135 0000 1111"))

    assert unlimited["data"]["placeOrder"] == {"order": {"status": "PENDING_PAYMENT"}, "userErrors": []}
    assert flash["data"]["placeOrder"] == {"order": {"status": "PENDING_PAYMENT"}, "userErrors": []}
    assert again["data"]["placeOrder"] == {"order": None, "userErrors": [{"code": "PURCHASE_LIMIT"}]}
    flash_seen = list(statements.seen)
    if TEST_DATABASE_URL is not None:
        # PostgreSQL: each order is one call of the placement function, the counts inside it.
        assert (unlimited_count, flash_count) == (1, 1)
        assert all("quanyi_place_order_v1" in statement for statement in unlimited_seen + flash_seen)
    else:
        assert not any("buyer_tally" in statement for statement in unlimited_seen)
        # The upsert of the buyer's count, and the order's note of which counts it raised.
        assert flash_count == unlimited_count + 2
