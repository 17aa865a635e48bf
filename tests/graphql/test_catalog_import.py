"""importCatalog: up to 100 records a call, created or updated by code, all or nothing, and a
dry run that says what would change without changing it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.e2e.shop import Shop, ShopKeys, open_shop
from tests.graphql.catalog_admin_support import Catalog, unique
from tests.support import GraphQLClient

IMPORT = """
mutation($records: [JSON!]!, $dry: Boolean) { importCatalog(records: $records, dryRun: $dry) {
  applied counts { type created updated unchanged } changes { index type code action fields }
  userErrors { field message code } } }
"""
BRAND_CHANGES = 'query($c: String!) { catalogChanges(entity: BRAND, code: $c) { edges { node { action } } } }'
PRODUCT = 'query($c: String!, $s: String!) { product(channel: $c, slug: $s) { name skus { code price { amount } } } }'


@pytest.fixture(scope="module")
async def shop(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Shop]:
    """A gateway on a demo database of the module's own: the channels and products made here
    leave the shared demo's lists as they are."""
    async with open_shop(tmp_path_factory.mktemp("catalog-import")) as opened:
        yield opened


@pytest.fixture
def gql(shop: Shop) -> GraphQLClient:
    return shop.client


@pytest.fixture
def keys(shop: Shop) -> ShopKeys:
    return shop.keys


@pytest.fixture
def catalog(gql: GraphQLClient, keys: ShopKeys) -> Catalog:
    return Catalog(gql, keys.admin)


@pytest.fixture
async def channel(catalog: Catalog) -> str:
    return await catalog.channel()


def _records(channel: str, brand: str, slug: str, sku: str, price: str = "19.90") -> list[dict[str, Any]]:
    return [
        {"type": "brand", "code": brand, "name": "导入品牌"},
        {"type": "product", "slug": slug, "name": "导入商品", "brand": brand, "category": "game-card"},
        {"type": "sku", "code": sku, "product": slug, "name": "导入 SKU", "kind": "CARD_CODE", "basePrice": price},
        {"type": "listing", "channel": channel, "product": slug},
    ]


async def _import(catalog: Catalog, records: list[Any], dry: bool = False) -> dict[str, Any]:
    return (await catalog.admin_gql(IMPORT, {"records": records, "dry": dry}))["data"]["importCatalog"]


async def test_a_dry_run_says_what_would_change_and_writes_nothing(catalog: Catalog, gql: GraphQLClient, channel: str) -> None:
    brand, slug, sku = unique("imp"), unique("imp"), unique("IMP").upper()

    answer = await _import(catalog, _records(channel, brand, slug, sku), dry=True)

    assert answer == {
        "applied": False,
        "counts": [{"type": t, "created": 1, "updated": 0, "unchanged": 0} for t in ("brand", "product", "sku", "listing")],
        "changes": [
            {"index": 0, "type": "brand", "code": brand, "action": "CREATE", "fields": ["code", "name"]},
            {"index": 1, "type": "product", "code": slug, "action": "CREATE",
             "fields": ["slug", "name", "brand", "category"]},
            {"index": 2, "type": "sku", "code": sku, "action": "CREATE", "fields": [
                "code", "product", "name", "kind", "currency", "basePrice", "faceValue", "supplierCost", "presaleCap",
                "serialUses"]},
            {"index": 3, "type": "listing", "code": f"{channel}/{slug}", "action": "CREATE", "fields": ["channel", "product"]},
        ],
        "userErrors": [],
    }
    assert (await gql(PRODUCT, {"c": channel, "s": slug}))["data"]["product"] is None


async def test_records_create_then_update_by_code_and_the_same_records_again_change_nothing(
    catalog: Catalog, gql: GraphQLClient, channel: str
) -> None:
    brand, slug, sku = unique("imp"), unique("imp"), unique("IMP").upper()
    created = await _import(catalog, _records(channel, brand, slug, sku))
    assert created["applied"] is True and created["userErrors"] == []
    assert (await gql(PRODUCT, {"c": channel, "s": slug}))["data"]["product"] == {
        "name": "导入商品", "skus": [{"code": sku, "price": {"amount": "19.90"}}]}

    again = await _import(catalog, _records(channel, brand, slug, sku))
    assert again["changes"] == []
    assert [c["unchanged"] for c in again["counts"]] == [1, 1, 1, 1]

    repriced = await _import(catalog, [{"type": "sku", "code": sku.lower(), "basePrice": "18.80"}])
    assert repriced["changes"] == [{"index": 0, "type": "sku", "code": sku, "action": "UPDATE", "fields": ["basePrice"]}]
    assert (await gql(PRODUCT, {"c": channel, "s": slug}))["data"]["product"]["skus"] == [{"code": sku, "price": {"amount": "18.80"}}]
    history = (await catalog.admin_gql(BRAND_CHANGES, {"c": brand}))["data"]["catalogChanges"]["edges"]
    assert [edge["node"]["action"] for edge in history] == ["CREATED"]  # recorded once, not per import


async def test_one_invalid_record_and_nothing_is_applied_every_problem_named(
    catalog: Catalog, gql: GraphQLClient, channel: str
) -> None:
    brand, slug, sku = unique("imp"), unique("imp"), unique("IMP").upper()
    records: list[Any] = _records(channel, brand, slug, sku, price="-3.00")
    records += [{"type": "gadget"}, {"type": "brand", "code": "Ｂad", "name": "x"}, "not an object",
                {"type": "brand", "code": brand, "name": "twice"}]

    answer = await _import(catalog, records)

    assert answer["applied"] is False
    assert [(e["field"], e["code"]) for e in answer["userErrors"]] == [
        ("records.4.type", "INVALID_TYPE"),
        ("records.5.code", "INVALID_CODE"),
        ("records.6.type", "INVALID_RECORD"),
        ("records.7.code", "DUPLICATE_RECORD"),
        ("records.2.basePrice", "NEGATIVE_AMOUNT"),
    ]
    assert (await gql(PRODUCT, {"c": channel, "s": slug}))["data"]["product"] is None
    assert (await catalog.admin_gql(BRAND_CHANGES, {"c": brand}))["data"]["catalogChanges"]["edges"] == []


async def test_a_call_carries_at_most_100_records(catalog: Catalog) -> None:
    answer = await _import(catalog, [{"type": "brand", "code": f"b{i}", "name": "x"} for i in range(101)])
    assert answer["applied"] is False
    assert [(e["field"], e["code"]) for e in answer["userErrors"]] == [("records", "TOO_MANY")]
