"""A shopper reads SKUs: exact prices, what kind each is, bundles and what stays private."""

from __future__ import annotations

from typing import Any

from tests.graphql.catalog_support import DemoCatalog
from tests.support import GraphQLClient

PRICES = """
query Prices($slug: String!) {
  product(channel: "web", slug: $slug) {
    skus { code price { amount currency } faceValue { amount currency } }
  }
}
"""

KINDS = """
{ products(channel: "h5", first: 100) { edges { node { skus { kind } } } } }
"""

BUNDLES = """
{
  product(channel: "web", slug: "gamer-gift-pack") {
    skus {
      code kind
      stock { available reserved presale }
      components { quantity sku { code kind stock { available } } }
    }
  }
}
"""

PRIVATE = """
query Private($id: ID!) {
  node(id: $id) {
    ... on Sku { code supplierCost { amount } suppliers { priority supplier { code } } components { quantity } }
  }
}
"""


def _money(amount: str) -> dict[str, str]:
    return {"amount": amount, "currency": "CNY"}


async def test_prices_are_decimal_strings_with_two_decimals(gql: GraphQLClient) -> None:
    answer = await gql(PRICES, {"slug": "qq-coins"})

    assert answer == {
        "data": {
            "product": {
                "skus": [
                    {"code": "QB-10", "price": _money("9.90"), "faceValue": _money("10.00")},
                    {"code": "QB-30", "price": _money("29.70"), "faceValue": _money("30.00")},
                    {"code": "QB-100", "price": _money("98.80"), "faceValue": _money("100.00")},
                ]
            }
        }
    }


async def test_a_single_digit_price_keeps_its_cents(gql: GraphQLClient) -> None:
    answer = await gql(PRICES, {"slug": "genshin-crystals"})

    assert answer["data"]["product"]["skus"][0] == {
        "code": "GS-60",
        "price": _money("6.00"),
        "faceValue": _money("6.00"),
    }


async def test_the_demo_catalog_sells_every_kind_of_sku(gql: GraphQLClient) -> None:
    answer = await gql(KINDS)

    kinds = {
        sku["kind"] for edge in answer["data"]["products"]["edges"] for sku in edge["node"]["skus"]
    }
    assert kinds == {"CARD_CODE", "SERIAL", "DIRECT_RECHARGE", "BUNDLE", "BLIND_BOX"}


async def test_a_bundle_lists_its_components_and_sells_as_often_as_the_scarcest(
    gql: GraphQLClient,
) -> None:
    answer = await gql(BUNDLES)

    skus = answer["data"]["product"]["skus"]
    assert [
        (
            s["code"],
            s["kind"],
            [(c["quantity"], c["sku"]["code"], c["sku"]["kind"]) for c in s["components"]],
        )
        for s in skus
    ] == [
        (
            "PACK-DOUBLE-VIP",
            "BUNDLE",
            [(1, "TXV-MONTH", "DIRECT_RECHARGE"), (1, "IQY-MONTH", "DIRECT_RECHARGE")],
        ),
        ("PACK-GAMER", "BUNDLE", [(1, "QB-30", "CARD_CODE"), (1, "TXV-MONTH", "DIRECT_RECHARGE")]),
    ]
    for bundle in skus:
        scarcest = min(
            c["sku"]["stock"]["available"] // c["quantity"] for c in bundle["components"]
        )
        assert bundle["stock"] == {"available": scarcest, "reserved": 0, "presale": 0}, bundle[
            "code"
        ]
    assert all(s["stock"]["available"] > 0 for s in skus), "the demo bundles are in stock"


async def test_supplier_cost_and_suppliers_are_hidden_from_anonymous_callers(
    gql: GraphQLClient, demo: DemoCatalog
) -> None:
    answers: list[dict[str, Any]] = [
        await gql(PRIVATE, {"id": demo.sku_id(code)})
        for code in ("TXV-MONTH", "QB-10", "PACK-GAMER")
    ]

    assert answers == [
        {
            "data": {
                "node": {
                    "code": "TXV-MONTH",
                    "supplierCost": None,
                    "suppliers": None,
                    "components": [],
                }
            }
        },
        {
            "data": {
                "node": {"code": "QB-10", "supplierCost": None, "suppliers": None, "components": []}
            }
        },
        {
            "data": {
                "node": {
                    "code": "PACK-GAMER",
                    "supplierCost": None,
                    "suppliers": None,
                    "components": [{"quantity": 1}, {"quantity": 1}],
                }
            }
        },
    ]
