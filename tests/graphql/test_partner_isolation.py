"""A partner key of one channel sees nothing of another channel, through any entry point."""

from __future__ import annotations

from sqlalchemy import select

from models import ApiKey as ApiKeyRow
from models import PriceChange as PriceChangeRow
from schema.relay import encode_id
from services.core.database import Database
from tests.graphql.catalog_support import DemoCatalog
from tests.graphql.conftest import Keys
from tests.support import GraphQLClient

PRODUCTS = """
query Products($channel: String!) {
  products(channel: $channel, first: 1) { edges { node { skus { price { amount } } } } }
}
"""
CHANNELS = "{ channels { code commissionRate } }"
NODE = """
query Node($id: ID!) {
  node(id: $id) {
    __typename
    ... on ApiKey { prefix channel }
    ... on PriceChange { changeChannel: channel }
    ... on Channel { code }
  }
}
"""
KEYS = "{ apiKeys { prefix channel role } }"
CHANGES = """
query Changes($channel: String) {
  priceChanges(channel: $channel, first: 50) { edges { node { channel } } }
}
"""
SKU_QUOTA = """
query Quota($id: ID!) { node(id: $id) { ... on Sku { channelQuota { channel quota } price { amount } } } }
"""
SET_QUOTA = """
mutation Quota($input: SetChannelQuotaInput!) { setChannelQuota(input: $input) { userErrors { code } } }
"""
SET_PRICE = """
mutation Set($input: SetChannelPriceInput!) { setChannelPrice(input: $input) { userErrors { code } } }
"""


def _codes(answer: dict) -> list[str]:
    return [error["extensions"]["code"] for error in answer.get("errors", [])]


async def test_a_partner_cannot_read_another_partner_channels_catalog_prices(gql: GraphQLClient, keys: Keys) -> None:
    answer = await gql(PRODUCTS, {"channel": "b2b-demo"}, key=keys.taobao)
    assert answer["data"] is None and _codes(answer) == ["FORBIDDEN"]


async def test_a_partner_reads_its_own_channel_catalog(gql: GraphQLClient, keys: Keys) -> None:
    answer = await gql(PRODUCTS, {"channel": "taobao"}, key=keys.taobao)
    assert "errors" not in answer and answer["data"]["products"]["edges"]


async def test_a_partner_lists_only_its_own_channel(gql: GraphQLClient, keys: Keys) -> None:
    answer = await gql(CHANNELS, key=keys.taobao)
    assert answer == {"data": {"channels": [{"code": "taobao", "commissionRate": "0.05"}]}}


async def test_an_operator_lists_every_channel(gql: GraphQLClient, keys: Keys) -> None:
    answer = await gql(CHANNELS, key=keys.admin)
    assert [c["code"] for c in answer["data"]["channels"]] == ["web", "mini", "h5", "taobao", "b2b-demo"]


async def test_a_guessed_channel_id_of_another_partner_is_null(gql: GraphQLClient, keys: Keys, demo: DemoCatalog) -> None:
    guessed = encode_id("Channel", demo.channels["b2b-demo"])
    assert await gql(NODE, {"id": guessed}, key=keys.taobao) == {"data": {"node": None}}


async def test_a_guessed_key_id_of_another_channel_is_null(gql: GraphQLClient, keys: Keys, db: Database) -> None:
    async with db.read_sessions() as session:
        b2b_key_id = await session.scalar(select(ApiKeyRow.id).where(ApiKeyRow.prefix == keys.b2b.split("_")[1]))
    guessed = encode_id("ApiKey", b2b_key_id)

    assert await gql(NODE, {"id": guessed}, key=keys.taobao) == {"data": {"node": None}}
    own = await gql(NODE, {"id": guessed}, key=keys.b2b)
    assert own == {"data": {"node": {"__typename": "ApiKey", "prefix": keys.b2b.split("_")[1], "channel": "b2b-demo"}}}


async def test_a_partner_lists_only_its_own_channels_keys(gql: GraphQLClient, keys: Keys) -> None:
    answer = await gql(KEYS, key=keys.taobao)
    assert {(k["channel"], k["role"]) for k in answer["data"]["apiKeys"]} == {("taobao", "PARTNER")}


async def test_a_partner_cannot_read_another_channels_price_changes(
    gql: GraphQLClient, keys: Keys, demo: DemoCatalog, db: Database
) -> None:
    await gql(SET_PRICE, {"input": {"channel": "b2b-demo", "skuId": demo.sku_id("NCM-MONTH"), "amount": "14.80"}}, key=keys.admin)
    await gql(SET_PRICE, {"input": {"channel": "taobao", "skuId": demo.sku_id("NCM-MONTH"), "amount": "14.90"}}, key=keys.admin)

    by_filter = await gql(CHANGES, {"channel": "b2b-demo"}, key=keys.taobao)
    unfiltered = await gql(CHANGES, {}, key=keys.taobao)

    assert by_filter["data"] is None and _codes(by_filter) == ["FORBIDDEN"]
    # Both channels have changes; the unfiltered list holds the partner's own only.
    assert {e["node"]["channel"] for e in unfiltered["data"]["priceChanges"]["edges"]} == {"taobao"}
    async with db.read_sessions() as session:
        change_id = await session.scalar(
            select(PriceChangeRow.id).where(PriceChangeRow.channel_id == demo.channels["b2b-demo"]).limit(1)
        )
    assert await gql(NODE, {"id": encode_id("PriceChange", change_id)}, key=keys.taobao) == {"data": {"node": None}}


async def test_a_partner_cannot_read_another_channels_quota(gql: GraphQLClient, keys: Keys, demo: DemoCatalog) -> None:
    sku = demo.sku_id("IQY-MONTH-CODE")
    await gql(SET_QUOTA, {"input": {"channel": "b2b-demo", "skuId": sku, "quota": 3}}, key=keys.admin)

    as_taobao = await gql(SKU_QUOTA, {"id": sku}, key=keys.taobao)
    as_b2b = await gql(SKU_QUOTA, {"id": sku}, key=keys.b2b)

    assert as_taobao["data"]["node"]["channelQuota"] is None
    assert as_b2b["data"]["node"]["channelQuota"] == {"channel": "b2b-demo", "quota": 3}


async def test_a_partner_cannot_change_quotas(gql: GraphQLClient, keys: Keys, demo: DemoCatalog) -> None:
    answer = await gql(SET_QUOTA, {"input": {"channel": "taobao", "skuId": demo.sku_id("QB-10"), "quota": 1000}}, key=keys.taobao)
    assert answer["data"] is None and _codes(answer) == ["FORBIDDEN"]


async def test_an_unknown_or_revoked_key_is_unauthenticated(gql: GraphQLClient, keys: Keys) -> None:
    tampered = keys.taobao[:-4] + "AAAA"
    response = await gql.post(PRODUCTS, {"channel": "taobao"}, key=tampered)
    assert response.status_code == 401
    assert _codes(response.json()) == ["UNAUTHENTICATED"]
