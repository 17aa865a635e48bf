"""Operators set channel prices under price control; buyers see the channel's price."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.graphql.catalog_support import DemoCatalog
from tests.graphql.conftest import Keys
from tests.support import GraphQLClient

SET_PRICE = """
mutation Set($input: SetChannelPriceInput!) {
  setChannelPrice(input: $input) {
    channelPrice { channel price { amount currency } startsAt endsAt }
    userErrors { field message code }
  }
}
"""
SET_CONTROL = """
mutation Control($input: SetPriceControlInput!) {
  setPriceControl(input: $input) {
    priceControl { floor { amount } ceiling { amount } }
    userErrors { field code }
  }
}
"""
SET_TIERS = """
mutation Tiers($input: SetPriceTiersInput!) {
  setPriceTiers(input: $input) { userErrors { field code } }
}
"""
SET_QUOTA = """
mutation Quota($input: SetChannelQuotaInput!) {
  setChannelQuota(input: $input) {
    quota { channel quota used remaining }
    userErrors { field code }
  }
}
"""
PRODUCT_PRICES = """
query Prices($channel: String!, $slug: String!) {
  product(channel: $channel, slug: $slug) {
    skus { code price { amount } priceTiers { minQuantity price { amount } } stock { available } }
  }
}
"""
PRICE_CHANGES = """
query Changes($channel: String, $skuId: ID) {
  priceChanges(channel: $channel, skuId: $skuId, first: 10) {
    edges { node { channel skuCode actor oldPrice { amount } newPrice { amount } } }
  }
}
"""


def _sku(answer: dict[str, Any], code: str) -> dict[str, Any]:
    return next(s for s in answer["data"]["product"]["skus"] if s["code"] == code)


async def test_a_channel_price_replaces_the_base_price_on_that_channel_only(
    gql: GraphQLClient, keys: Keys, demo: DemoCatalog
) -> None:
    sku = demo.sku_id("NE-50")

    answer = await gql(SET_PRICE, {"input": {"channel": "b2b-demo", "skuId": sku, "amount": "47.00"}}, key=keys.admin)

    assert answer == {"data": {"setChannelPrice": {
        "channelPrice": {"channel": "b2b-demo", "price": {"amount": "47.00", "currency": "CNY"}, "startsAt": None, "endsAt": None},
        "userErrors": [],
    }}}
    b2b = await gql(PRODUCT_PRICES, {"channel": "b2b-demo", "slug": "netease-one-card"}, key=keys.b2b)
    web = await gql(PRODUCT_PRICES, {"channel": "web", "slug": "netease-one-card"})
    assert _sku(b2b, "NE-50")["price"] == {"amount": "47.00"}
    assert _sku(web, "NE-50")["price"] == {"amount": "49.30"}


async def test_a_price_below_the_floor_is_refused_and_nothing_changes(
    gql: GraphQLClient, keys: Keys, demo: DemoCatalog
) -> None:
    sku = demo.sku_id("STEAM-100")
    control = await gql(SET_CONTROL, {"input": {"skuId": sku, "floor": "97.00", "ceiling": "105.00"}}, key=keys.admin)
    assert control["data"]["setPriceControl"] == {
        "priceControl": {"floor": {"amount": "97.00"}, "ceiling": {"amount": "105.00"}},
        "userErrors": [],
    }

    below = await gql(SET_PRICE, {"input": {"channel": "b2b-demo", "skuId": sku, "amount": "96.99"}}, key=keys.admin)
    above = await gql(SET_PRICE, {"input": {"channel": "b2b-demo", "skuId": sku, "amount": "105.01"}}, key=keys.admin)

    assert below["data"]["setChannelPrice"]["channelPrice"] is None
    assert [e["code"] for e in below["data"]["setChannelPrice"]["userErrors"]] == ["BELOW_PRICE_FLOOR"]
    assert [e["code"] for e in above["data"]["setChannelPrice"]["userErrors"]] == ["ABOVE_PRICE_CEILING"]
    prices = await gql(PRODUCT_PRICES, {"channel": "b2b-demo", "slug": "steam-wallet"}, key=keys.b2b)
    assert _sku(prices, "STEAM-100")["price"] == {"amount": "99.50"}
    changes = await gql(PRICE_CHANGES, {"skuId": sku}, key=keys.admin)
    assert changes["data"]["priceChanges"]["edges"] == []


async def test_every_price_change_is_recorded_with_who_old_and_new(
    gql: GraphQLClient, keys: Keys, demo: DemoCatalog
) -> None:
    sku = demo.sku_id("NE-15")
    for amount in ("14.50", "14.20"):
        await gql(SET_PRICE, {"input": {"channel": "b2b-demo", "skuId": sku, "amount": amount}}, key=keys.admin)

    changes = await gql(PRICE_CHANGES, {"channel": "b2b-demo", "skuId": sku}, key=keys.admin)

    admin_prefix = keys.admin.split("_")[1]
    assert [edge["node"] for edge in changes["data"]["priceChanges"]["edges"]] == [
        {"channel": "b2b-demo", "skuCode": "NE-15", "actor": f"admin:{admin_prefix}", "oldPrice": {"amount": "14.50"}, "newPrice": {"amount": "14.20"}},
        {"channel": "b2b-demo", "skuCode": "NE-15", "actor": f"admin:{admin_prefix}", "oldPrice": None, "newPrice": {"amount": "14.50"}},
    ]


async def test_a_promotion_window_applies_only_while_open(
    gql: GraphQLClient, keys: Keys, demo: DemoCatalog
) -> None:
    now = datetime.now(UTC)
    sku = demo.sku_id("GS-330")
    closed = {"startsAt": (now - timedelta(hours=2)).isoformat(), "endsAt": (now - timedelta(hours=1)).isoformat()}
    future = {"startsAt": (now + timedelta(hours=1)).isoformat(), "endsAt": (now + timedelta(hours=2)).isoformat()}
    open_now = {"startsAt": (now - timedelta(minutes=5)).isoformat(), "endsAt": (now + timedelta(hours=1)).isoformat()}
    for window, amount in ((closed, "25.00"), (future, "26.00"), (open_now, "27.00")):
        answer = await gql(SET_PRICE, {"input": {"channel": "b2b-demo", "skuId": sku, "amount": amount, **window}}, key=keys.admin)
        assert answer["data"]["setChannelPrice"]["userErrors"] == []

    prices = await gql(PRODUCT_PRICES, {"channel": "b2b-demo", "slug": "genshin-crystals"}, key=keys.b2b)

    assert _sku(prices, "GS-330")["price"] == {"amount": "27.00"}


async def test_a_window_that_ends_before_it_starts_is_refused(gql: GraphQLClient, keys: Keys, demo: DemoCatalog) -> None:
    now = datetime.now(UTC)
    window = {"startsAt": now.isoformat(), "endsAt": (now - timedelta(minutes=1)).isoformat()}
    answer = await gql(SET_PRICE, {"input": {"channel": "b2b-demo", "skuId": demo.sku_id("GS-60"), "amount": "5.80", **window}}, key=keys.admin)
    assert answer["data"]["setChannelPrice"]["userErrors"] == [
        {"field": "endsAt", "message": "the window must end after it starts", "code": "EMPTY_PRICE_WINDOW"}
    ]


async def test_b2b_tiers_show_per_quantity_prices(gql: GraphQLClient, keys: Keys, demo: DemoCatalog) -> None:
    sku = demo.sku_id("GS-WELKIN")
    tiers = [{"minQuantity": 10, "amount": "28.50"}, {"minQuantity": 100, "amount": "27.90"}]
    answer = await gql(SET_TIERS, {"input": {"channel": "b2b-demo", "skuId": sku, "tiers": tiers}}, key=keys.admin)
    assert answer == {"data": {"setPriceTiers": {"userErrors": []}}}

    prices = await gql(PRODUCT_PRICES, {"channel": "b2b-demo", "slug": "genshin-crystals"}, key=keys.b2b)

    assert _sku(prices, "GS-WELKIN")["priceTiers"] == [
        {"minQuantity": 10, "price": {"amount": "28.50"}},
        {"minQuantity": 100, "price": {"amount": "27.90"}},
    ]
    web = await gql(PRODUCT_PRICES, {"channel": "web", "slug": "genshin-crystals"})
    assert _sku(web, "GS-WELKIN")["priceTiers"] == []


async def test_only_operators_change_prices(gql: GraphQLClient, keys: Keys, demo: DemoCatalog) -> None:
    variables = {"input": {"channel": "taobao", "skuId": demo.sku_id("QB-10"), "amount": "9.00"}}

    as_partner = await gql(SET_PRICE, variables, key=keys.taobao)
    anonymous = await gql(SET_PRICE, variables)

    assert as_partner["data"] is None and as_partner["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert anonymous["data"] is None and anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_a_channel_quota_caps_what_that_channel_sees_as_available(
    gql: GraphQLClient, keys: Keys, demo: DemoCatalog
) -> None:
    sku = demo.sku_id("STEAM-50")
    answer = await gql(SET_QUOTA, {"input": {"channel": "taobao", "skuId": sku, "quota": 7}}, key=keys.admin)
    assert answer["data"]["setChannelQuota"] == {
        "quota": {"channel": "taobao", "quota": 7, "used": 0, "remaining": 7}, "userErrors": [],
    }

    taobao = await gql(PRODUCT_PRICES, {"channel": "taobao", "slug": "steam-wallet"}, key=keys.taobao)
    web = await gql(PRODUCT_PRICES, {"channel": "web", "slug": "steam-wallet"})

    assert _sku(taobao, "STEAM-50")["stock"] == {"available": 7}
    assert _sku(web, "STEAM-50")["stock"] == {"available": 30}

    removed = await gql(SET_QUOTA, {"input": {"channel": "taobao", "skuId": sku, "quota": None}}, key=keys.admin)
    assert removed["data"]["setChannelQuota"] == {"quota": None, "userErrors": []}
    taobao = await gql(PRODUCT_PRICES, {"channel": "taobao", "slug": "steam-wallet"}, key=keys.taobao)
    assert _sku(taobao, "STEAM-50")["stock"] == {"available": 30}
