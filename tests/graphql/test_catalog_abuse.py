"""What the product center refuses, field by field: look-alike codes, over-long text, prices
below zero or the floor, bundles that hold themselves, components in another currency."""

from __future__ import annotations

import pytest

from schema.relay import encode_id
from tests.graphql.catalog_admin_support import CREATE_SKU, Catalog, unique
from tests.graphql.catalog_support import DemoCatalog
from tests.graphql.conftest import Keys
from tests.support import GraphQLClient

CREATE_BRAND = """
mutation($code: String!, $name: String!) { createBrand(input: { code: $code, name: $name }) {
  brand { code } userErrors { field code } } }
"""
CREATE_CHANNEL = """
mutation($code: String!) { createChannel(input: { code: $code, name: "x", currency: "CNY" }) {
  channel { code } userErrors { field code } } }
"""
IMPORT = """
mutation($records: [JSON!]!, $dry: Boolean!) { importCatalog(records: $records, dryRun: $dry) {
  applied userErrors { field code } } }
"""


@pytest.fixture
def catalog(gql: GraphQLClient, keys: Keys) -> Catalog:
    return Catalog(gql, keys.admin)


@pytest.mark.parametrize(("code", "error"), [
    ("Tencent", "DUPLICATE"),  # folds to the demo's tencent
    ("  tencent ", "DUPLICATE"),
    ("TENCENT", "DUPLICATE"),
    ("ｔｅｎｃｅｎｔ", "INVALID_CODE"),  # full-width letters
    ("tеncent", "INVALID_CODE"),  # a Cyrillic е
    ("ten\u200bcent", "INVALID_CODE"),  # a zero-width space
    ("ten cent", "INVALID_CODE"),
    ("tencent\n", "INVALID_CODE"),
    ("", "INVALID_CODE"),
    ("-tencent", "INVALID_CODE"),
    ("x" * 65, "TOO_LONG"),
])
async def test_a_code_in_another_spelling_never_makes_a_second_brand(catalog: Catalog, code: str, error: str) -> None:
    answer = await catalog.admin_gql(CREATE_BRAND, {"code": code, "name": "仿冒"})
    assert answer["data"]["createBrand"] == {"brand": None, "userErrors": [{"field": "code", "code": error}]}


async def test_sku_codes_slugs_and_channel_codes_fold_the_same_way(catalog: Catalog) -> None:
    product = await catalog.product()
    sku = await catalog.create_sku(product["id"], code="qb-10")  # the demo's QB-10
    assert sku["userErrors"] == [{"field": "code", "message": "a sku 'QB-10' exists already", "code": "DUPLICATE"}]
    slug = await catalog.admin_gql(
        'mutation { createProduct(input: { brand: "tencent", category: "game-card", name: "x", slug: " QQ-Coins " }) '
        "{ product { slug } userErrors { field code } } }"
    )
    assert slug["data"]["createProduct"]["userErrors"] == [{"field": "slug", "code": "DUPLICATE"}]
    channel = await catalog.admin_gql(CREATE_CHANNEL, {"code": "WEB"})
    assert channel["data"]["createChannel"] == {"channel": None, "userErrors": [{"field": "code", "code": "DUPLICATE"}]}


async def test_a_new_code_is_stored_in_its_one_spelling(catalog: Catalog) -> None:
    code = unique("Brand").upper()
    answer = await catalog.admin_gql(CREATE_BRAND, {"code": f" {code} ", "name": "  新品牌  "})
    assert answer["data"]["createBrand"] == {"brand": {"code": code.lower()}, "userErrors": []}


async def test_over_long_or_empty_text_is_refused_by_field(catalog: Catalog) -> None:
    answer = await catalog.admin_gql(
        "mutation($input: CreateProductInput!) { createProduct(input: $input) { product { slug } userErrors { field code } } }",
        {"input": {"brand": "tencent", "category": "game-card", "name": "名" * 201, "slug": unique("long"),
                   "description": "长" * 5001, "imageUrls": ["http://insecure.example/a.png", "https://ok.example/b.png"],
                   "attributes": {f"k{i}": "v" for i in range(31)}}},
    )
    assert answer["data"]["createProduct"] == {"product": None, "userErrors": [
        {"field": "name", "code": "TOO_LONG"},
        {"field": "description", "code": "TOO_LONG"},
        {"field": "imageUrls.0", "code": "INVALID_URL"},
        {"field": "attributes", "code": "TOO_MANY"},
    ]}
    blank = await catalog.admin_gql(CREATE_BRAND, {"code": unique("blank"), "name": "   "})
    assert blank["data"]["createBrand"]["userErrors"] == [{"field": "name", "code": "REQUIRED"}]


@pytest.mark.parametrize(("fields", "errors"), [
    ({"basePrice": "-1.00"}, [{"field": "basePrice", "code": "NEGATIVE_AMOUNT"}]),
    ({"basePrice": "0"}, [{"field": "basePrice", "code": "PRICE_NOT_POSITIVE"}]),
    ({"supplierCost": "-0.01"}, [{"field": "supplierCost", "code": "NEGATIVE_AMOUNT"}]),
    ({"faceValue": "-5"}, [{"field": "faceValue", "code": "NEGATIVE_AMOUNT"}]),
    ({"basePrice": "9.00", "priceFloor": "9.50"}, [{"field": "basePrice", "code": "BELOW_PRICE_FLOOR"}]),
    ({"basePrice": "9.00", "priceCeiling": "8.00"}, [{"field": "basePrice", "code": "ABOVE_PRICE_CEILING"}]),
    ({"priceFloor": "12.00", "priceCeiling": "11.00"}, [{"field": "priceFloor", "code": "FLOOR_ABOVE_CEILING"}]),
    ({"presaleCap": -1}, [{"field": "presaleCap", "code": "OUT_OF_RANGE"}]),
    ({"kind": "DIRECT_RECHARGE", "presaleCap": 5}, [{"field": "presaleCap", "code": "INVALID_FOR_KIND"}]),
    ({"serialUses": 3}, [{"field": "serialUses", "code": "INVALID_FOR_KIND"}]),
    ({"currency": "XYZ"}, [{"field": "currency", "code": "UNSUPPORTED_CURRENCY"}]),
    ({"suppliers": [{"supplier": "no-such-supplier"}]}, [{"field": "suppliers.0.supplier", "code": "NOT_FOUND"}]),
])
async def test_sku_amounts_and_kind_fields_are_checked(catalog: Catalog, fields: dict, errors: list) -> None:  # type: ignore[type-arg]
    product = await catalog.product()
    answer = await catalog.create_sku(product["id"], **fields)
    assert answer["sku"] is None
    assert [{"field": e["field"], "code": e["code"]} for e in answer["userErrors"]] == errors


@pytest.mark.parametrize("amount", ["9.999", "1e3", " 9.90", "9,90"])
async def test_an_amount_not_in_the_contracts_form_is_refused_at_the_door(catalog: Catalog, amount: str) -> None:
    product = await catalog.product()
    payload = {"productId": product["id"], "code": unique("T").upper(), "name": "SKU", "kind": "CARD_CODE",
               "basePrice": amount}
    answer = await catalog.admin_gql(CREATE_SKU, {"input": payload})
    assert answer.get("data") is None
    assert [e["extensions"]["code"] for e in answer["errors"]] == ["BAD_USER_INPUT"]


async def test_an_update_below_the_floor_changes_nothing(catalog: Catalog) -> None:
    product = await catalog.product()
    sku = await catalog.sku(product["id"], basePrice="10.00", priceFloor="9.50")
    answer = await catalog.update_sku(id=sku["id"], version=1, basePrice="9.40")
    assert answer == {"sku": None, "userErrors": [
        {"field": "basePrice", "message": "the price is below the SKU's price floor", "code": "BELOW_PRICE_FLOOR"},
    ]}


async def test_a_bundle_never_holds_itself(catalog: Catalog, demo: DemoCatalog) -> None:
    product = await catalog.product()
    part = encode_id("Sku", demo.skus["QB-10"])
    bundle = await catalog.sku(product["id"], kind="BUNDLE", components=[{"skuId": part, "quantity": 2}])

    direct = await catalog.update_sku(id=bundle["id"], version=1, components=[{"skuId": bundle["id"], "quantity": 1}])
    nested = await catalog.create_sku(product["id"], kind="BUNDLE", components=[
        {"skuId": encode_id("Sku", demo.skus["PACK-GAMER"]), "quantity": 1}])

    assert direct["userErrors"] == [{
        "field": "components", "message": "a bundle cannot contain itself, directly or through another bundle",
        "code": "BUNDLE_CYCLE",
    }]
    assert nested["userErrors"][0] | {"message": ""} == {"field": "components.0.skuId", "message": "", "code": "NESTED_BUNDLE"}


async def test_bundles_that_hold_each_other_in_one_import_are_refused(catalog: Catalog) -> None:
    product = await catalog.product()
    a, b = unique("CYCLE-A").upper(), unique("CYCLE-B").upper()
    records = [
        {"type": "sku", "code": a, "product": product["slug"], "name": "A", "kind": "BUNDLE", "basePrice": "10.00",
         "components": [{"sku": b, "quantity": 1}]},
        {"type": "sku", "code": b, "product": product["slug"], "name": "B", "kind": "BUNDLE", "basePrice": "10.00",
         "components": [{"sku": a, "quantity": 1}]},
    ]
    answer = await catalog.admin_gql(IMPORT, {"records": records, "dry": False})
    assert answer["data"]["importCatalog"] == {"applied": False, "userErrors": [
        {"field": "records.0.components", "code": "BUNDLE_CYCLE"},
        {"field": "records.1.components", "code": "BUNDLE_CYCLE"},
    ]}


async def test_a_bundle_holds_skus_of_its_own_currency_only(catalog: Catalog) -> None:
    product = await catalog.product()
    dollars = await catalog.sku(product["id"], currency="USD", basePrice="1.50")
    bundle = await catalog.create_sku(product["id"], kind="BUNDLE", components=[{"skuId": dollars["id"], "quantity": 1}])
    assert bundle["userErrors"] == [{
        "field": "components.0.skuId", "message": "the SKU is sold in USD, the bundle in CNY", "code": "CURRENCY_MISMATCH",
    }]


async def test_kind_currency_and_product_of_a_sku_stay_as_created(catalog: Catalog) -> None:
    product = await catalog.product()
    sku = await catalog.sku(product["id"])
    answer = await catalog.admin_gql(IMPORT, {"records": [
        {"type": "sku", "code": sku["code"], "kind": "SERIAL", "currency": "USD"}], "dry": True})
    assert answer["data"]["importCatalog"]["userErrors"] == [
        {"field": "records.0.kind", "code": "IMMUTABLE"}, {"field": "records.0.currency", "code": "IMMUTABLE"},
    ]


async def test_a_supplier_secret_is_checked_and_never_shown(catalog: Catalog) -> None:
    code = unique("sup")
    weak = await catalog.admin_gql(
        'mutation($c: String!) { createSupplier(input: { code: $c, name: "x", baseUrl: "ftp://x", secret: "short" }) '
        "{ supplier { code } userErrors { field code } } }", {"c": code})
    assert weak["data"]["createSupplier"] == {"supplier": None, "userErrors": [{"field": "baseUrl", "code": "INVALID_CONNECTION"}]}
    made = await catalog.admin_gql(
        'mutation($c: String!) { createSupplier(input: { code: $c, name: "x", baseUrl: "https://s.example", '
        'secret: "a-very-long-shared-secret" }) { supplier { code secretSet version } userErrors { field code } } }', {"c": code})
    assert made["data"]["createSupplier"] == {"supplier": {"code": code, "secretSet": True, "version": 2}, "userErrors": []}
    changes = await catalog.admin_gql(
        'query($c: String!) { catalogChanges(entity: SUPPLIER, code: $c) { edges { node { action before after } } } }', {"c": code})
    assert "a-very-long-shared-secret" not in str(changes)
    assert [e["node"]["action"] for e in changes["data"]["catalogChanges"]["edges"]] == ["CONNECTED", "CREATED"]


MALFORMED: list[object] = [
    {"type": ["sku"]}, {"type": {"a": 1}}, {"type": None}, 42, [], "sku",
    {"type": "sku", "code": ["QB-10"], "product": {"slug": "x"}, "kind": 7, "basePrice": 9.9},
    {"type": "sku", "code": "WEIRD-1", "product": "qq-coins", "name": "x", "kind": "bundle",
     "basePrice": "1.00", "components": [None, 3, {"sku": 5, "quantity": "2"}], "suppliers": "sim-fast"},
    {"type": "sku", "code": "WEIRD-2", "product": "qq-coins", "name": "x", "kind": "CARD_CODE", "basePrice": "1.00",
     "suppliers": [{"supplier": None, "priority": True, "productCode": 12, "cost": [1]}], "presaleCap": 1.5,
     "rechargeAccountFormats": "PHONE", "serialUses": None},
    {"type": "product", "slug": "weird", "name": {"zh": "x"}, "brand": None, "category": [], "imageUrls": "https://a",
     "attributes": ["a"], "description": 5},
    {"type": "channel", "code": "weird", "name": "x", "kind": "SHOP", "currency": 156, "commissionRate": "abc",
     "public": "yes", "settlementTimeZone": "../../etc/passwd"},
    {"type": "listing", "channel": "web", "product": "qq-coins", "position": "first"},
]


async def test_malformed_records_are_user_errors_never_a_failure(catalog: Catalog) -> None:
    answer = await catalog.admin_gql(IMPORT, {"records": MALFORMED, "dry": False})
    assert "errors" not in answer, answer
    payload = answer["data"]["importCatalog"]
    assert payload["applied"] is False
    flagged = {error["field"].split(".")[1] for error in payload["userErrors"]}
    assert flagged == {str(index) for index in range(len(MALFORMED))}

