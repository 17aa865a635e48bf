"""Least privilege: each kind of caller reads what its role needs, and nothing more.

A storefront key ships inside a public app (anyone can take it out), so it reads what an
anonymous caller reads: never keys, price-change history, commission or quotas. Supplier cost
and the platform's margin are for operators only, partners included.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from schema.relay import encode_id
from tests.e2e.shop import Shop, StockedSku, open_shop

SET_PRICE = """
mutation Set($input: SetChannelPriceInput!) { setChannelPrice(input: $input) { userErrors { code } } }
"""
SET_QUOTA = """
mutation Quota($input: SetChannelQuotaInput!) { setChannelQuota(input: $input) { userErrors { code } } }
"""
CATALOG = """
query Catalog($channel: String!, $id: ID!) {
  product(channel: $channel, id: $id) {
    skus { code price { amount } channelQuota { quota } supplierCost { amount } suppliers { priority } priceControl { floor { amount } } }
  }
}
"""
CHANNEL = """
query Channel($id: ID!) { node(id: $id) { ... on Channel { code commissionRate } } }
"""
KEYS = "query { apiKeys { prefix channel } }"
PRICE_CHANGES = """
query Changes($channel: String) { priceChanges(channel: $channel) { edges { node { id channel skuCode } } } }
"""
NODE = "query Node($id: ID!) { node(id: $id) { id } }"


@dataclass(frozen=True)
class Ground:
    sku: StockedSku
    web_change: str  # a price change of the public channel web
    web_key: str  # the storefront key's own ApiKey id


@pytest.fixture(scope="module")
async def shop(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Shop]:
    async with open_shop(tmp_path_factory.mktemp("least-privilege")) as opened:
        yield opened


@pytest.fixture(scope="module")
async def ground(shop: Shop) -> Ground:
    sku = await shop.shelf.card_codes(5, price_fen=1000)
    for channel in ("web", "taobao"):
        await shop.gql(SET_PRICE, {"input": {"channel": channel, "skuId": sku.gid, "amount": "9.90"}}, key=shop.keys.admin)
        await shop.gql(SET_QUOTA, {"input": {"channel": channel, "skuId": sku.gid, "quota": 3}}, key=shop.keys.admin)
    changes = await shop.gql(PRICE_CHANGES, {"channel": "web"}, key=shop.keys.admin)
    keys = await shop.gql("query { apiKeys { id prefix } }", key=shop.keys.admin)
    web_key = next(k["id"] for k in keys["data"]["apiKeys"] if k["prefix"] == shop.keys.prefix(shop.keys.web))
    return Ground(sku, changes["data"]["priceChanges"]["edges"][0]["node"]["id"], web_key)


def _sku(answer: dict[str, Any], code: str) -> dict[str, Any]:
    return next(s for s in answer["data"]["product"]["skus"] if s["code"] == code)


async def _catalog(shop: Shop, ground: Ground, channel: str, key: str | None) -> dict[str, Any]:
    answer = await shop.gql(CATALOG, {"channel": channel, "id": encode_id("Product", shop.shelf.product_id)}, key=key)
    return _sku(answer, ground.sku.code)


async def test_a_storefront_key_reads_the_catalog_exactly_as_an_anonymous_buyer(shop: Shop, ground: Ground) -> None:
    anonymous = await _catalog(shop, ground, "web", None)
    storefront = await _catalog(shop, ground, "web", shop.keys.web)

    assert storefront == anonymous == {
        "code": ground.sku.code, "price": {"amount": "9.90"},
        "channelQuota": None, "supplierCost": None, "suppliers": None, "priceControl": None,
    }


async def test_a_partner_reads_its_quota_but_never_supplier_cost(shop: Shop, ground: Ground) -> None:
    partner = await _catalog(shop, ground, "taobao", shop.keys.taobao)
    operator = await _catalog(shop, ground, "taobao", shop.keys.admin)

    assert partner == {
        "code": ground.sku.code, "price": {"amount": "9.90"},
        "channelQuota": {"quota": 3}, "supplierCost": None, "suppliers": None, "priceControl": None,
    }
    assert (operator["channelQuota"], operator["supplierCost"] is not None, operator["suppliers"] is not None) == (
        {"quota": 3}, True, True,
    )


@pytest.mark.parametrize(
    ("caller", "channel", "rate"),
    [("storefront", "web", None), ("anonymous", "web", None), ("partner", "taobao", "0.05"), ("operator", "web", "0")],
)
async def test_commission_is_read_by_operators_and_the_channels_partner(
    shop: Shop, caller: str, channel: str, rate: str | None
) -> None:
    key = {"storefront": shop.keys.web, "anonymous": None, "partner": shop.keys.taobao, "operator": shop.keys.admin}[caller]
    channels = await shop.gql("query { channels { id code } }", key=shop.keys.admin)
    gid = next(c["id"] for c in channels["data"]["channels"] if c["code"] == channel)

    answer = await shop.gql(CHANNEL, {"id": gid}, key=key)

    assert answer == {"data": {"node": {"code": channel, "commissionRate": rate}}}


@pytest.mark.parametrize(
    ("query", "variables"),
    [(KEYS, None), (PRICE_CHANGES, None), (PRICE_CHANGES, {"channel": "web"})],
    ids=["apiKeys", "priceChanges", "priceChanges of its channel"],
)
async def test_a_storefront_key_reads_no_keys_and_no_price_history(
    shop: Shop, ground: Ground, query: str, variables: dict[str, str] | None
) -> None:
    answer = await shop.gql(query, variables, key=shop.keys.web)

    assert (answer["data"], [e["extensions"]["code"] for e in answer["errors"]]) == (None, ["FORBIDDEN"])


async def test_a_storefront_key_cannot_open_its_channels_key_or_price_change_by_id(shop: Shop, ground: Ground) -> None:
    found = [await shop.gql(NODE, {"id": gid}, key=shop.keys.web) for gid in (ground.web_key, ground.web_change)]

    assert found == [{"data": {"node": None}}] * 2


async def test_a_partner_reads_its_own_channels_keys_and_price_history(shop: Shop, ground: Ground) -> None:
    keys = await shop.gql(KEYS, key=shop.keys.taobao)
    changes = await shop.gql(PRICE_CHANGES, None, key=shop.keys.taobao)

    assert keys == {"data": {"apiKeys": [{"prefix": shop.keys.prefix(shop.keys.taobao), "channel": "taobao"}]}}
    assert {(e["node"]["channel"], e["node"]["skuCode"]) for e in changes["data"]["priceChanges"]["edges"]} == {
        ("taobao", ground.sku.code),
    }
