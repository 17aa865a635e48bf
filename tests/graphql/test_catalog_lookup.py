"""A client fetches one product by slug or ID, and any object by its global ID."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import delete, select

from domain.catalog import SkuKind
from models import Brand, Category, Product, Sku
from schema.relay import encode_id
from services.core.database import Database
from tests.graphql.catalog_support import DemoCatalog, outcome
from tests.support import GraphQLClient

PRODUCT = """
query Product($channel: String!, $id: ID, $slug: String) {
  product(channel: $channel, id: $id, slug: $slug) {
    id slug name
    brand { code }
    category { code }
    skus { code }
  }
}
"""

NODE = """
query Node($id: ID!) {
  node(id: $id) {
    __typename id
    ... on Product { slug }
    ... on Sku { code kind }
    ... on Brand { code name }
    ... on Category { code name }
    ... on Channel { code public }
    ... on Supplier { code }
  }
}
"""


@dataclass(frozen=True)
class Withdrawn:
    product_id: str
    sku_id: str
    slug: str


@pytest.fixture(scope="module")
async def withdrawn(db: Database) -> AsyncIterator[Withdrawn]:
    """A product taken off sale, with its SKU; removed again after the module."""
    async with db.sessions() as session, session.begin():
        brand = await session.scalar(select(Brand).where(Brand.code == "tencent"))
        category = await session.scalar(select(Category).where(Category.code == "video-vip"))
        assert brand is not None and category is not None
        product = Product(
            slug="withdrawn-lookup-test",
            name="下架商品",
            brand_id=brand.id,
            category_id=category.id,
            active=False,
        )
        session.add(product)
        await session.flush()
        sku = Sku(
            product_id=product.id,
            code="WITHDRAWN-LOOKUP-TEST",
            name="下架 SKU",
            kind=SkuKind.DIRECT_RECHARGE,
            face_value_fen=100,
            supplier_cost_fen=90,
            base_price_fen=100,
        )
        session.add(sku)
        await session.flush()
    yield Withdrawn(encode_id("Product", product.id), encode_id("Sku", sku.id), product.slug)
    async with db.sessions() as session, session.begin():
        await session.execute(delete(Sku).where(Sku.id == sku.id))
        await session.execute(delete(Product).where(Product.id == product.id))


QQ_COINS = {
    "slug": "qq-coins",
    "name": "Q币卡",
    "brand": {"code": "tencent"},
    "category": {"code": "platform-card"},
    "skus": [{"code": "QB-10"}, {"code": "QB-30"}, {"code": "QB-100"}],
}


async def test_a_product_is_found_by_its_slug(gql: GraphQLClient, demo: DemoCatalog) -> None:
    answer = await gql(PRODUCT, {"channel": "web", "slug": "qq-coins"})

    assert answer == {"data": {"product": {"id": demo.product_id("qq-coins"), **QQ_COINS}}}


async def test_a_product_is_found_by_its_id(gql: GraphQLClient, demo: DemoCatalog) -> None:
    answer = await gql(PRODUCT, {"channel": "mini", "id": demo.product_id("qq-coins")})

    assert answer == {"data": {"product": {"id": demo.product_id("qq-coins"), **QQ_COINS}}}


@pytest.mark.parametrize(
    "given", [{}, {"slug": "qq-coins", "id": "UHJvZHVjdDox"}], ids=["neither", "both"]
)
async def test_a_product_needs_exactly_one_of_id_and_slug(
    gql: GraphQLClient, given: dict[str, Any]
) -> None:
    assert outcome(await gql(PRODUCT, {"channel": "web", **given})) == {
        "data": {"product": None},
        "errors": [{"path": ["product"], "code": "BAD_USER_INPUT", "field": "id"}],
    }


async def test_an_unknown_slug_is_null(gql: GraphQLClient) -> None:
    assert await gql(PRODUCT, {"channel": "web", "slug": "no-such-product"}) == {
        "data": {"product": None}
    }


async def test_a_product_id_unknown_or_of_another_type_is_null(
    gql: GraphQLClient, demo: DemoCatalog
) -> None:
    for other in (encode_id("Product", 2_000_000_000), demo.sku_id("QB-10"), encode_id("Brand", 1)):
        assert await gql(PRODUCT, {"channel": "web", "id": other}) == {"data": {"product": None}}, (
            other
        )


async def test_a_withdrawn_product_is_null_by_slug_and_by_id(
    gql: GraphQLClient, withdrawn: Withdrawn
) -> None:
    by_slug = await gql(PRODUCT, {"channel": "web", "slug": withdrawn.slug})
    by_id = await gql(PRODUCT, {"channel": "web", "id": withdrawn.product_id})
    as_node = await gql(NODE, {"id": withdrawn.product_id})

    assert [by_slug, by_id, as_node] == [{"data": {"product": None}}] * 2 + [
        {"data": {"node": None}}
    ]


async def test_a_malformed_product_id_is_bad_user_input(gql: GraphQLClient) -> None:
    assert outcome(await gql(PRODUCT, {"channel": "web", "id": "not-an-id"})) == {
        "data": {"product": None},
        "errors": [{"path": ["product"], "code": "BAD_USER_INPUT", "field": "id"}],
    }


async def test_a_product_of_an_unknown_channel_is_bad_user_input(gql: GraphQLClient) -> None:
    assert outcome(await gql(PRODUCT, {"channel": "jd", "slug": "qq-coins"})) == {
        "data": {"product": None},
        "errors": [{"path": ["product"], "code": "BAD_USER_INPUT", "field": "channel"}],
    }


async def test_a_partner_channels_product_is_forbidden_to_anonymous_callers(
    gql: GraphQLClient,
) -> None:
    assert outcome(await gql(PRODUCT, {"channel": "taobao", "slug": "qq-coins"})) == {
        "data": {"product": None},
        "errors": [{"path": ["product"], "code": "FORBIDDEN", "field": "channel"}],
    }


async def test_each_catalog_type_is_fetched_by_its_node_id(
    gql: GraphQLClient, demo: DemoCatalog
) -> None:
    ids = {
        "product": demo.product_id("steam-wallet"),
        "sku": demo.sku_id("SN-5USES"),
        "brand": encode_id("Brand", demo.brands["mihoyo"]),
        "category": encode_id("Category", demo.categories["gift-pack"]),
        "channel": encode_id("Channel", demo.channels["h5"]),
    }

    answers = {name: await gql(NODE, {"id": gid}) for name, gid in ids.items()}

    assert answers == {
        "product": {
            "data": {
                "node": {"__typename": "Product", "id": ids["product"], "slug": "steam-wallet"}
            }
        },
        "sku": {
            "data": {
                "node": {
                    "__typename": "Sku",
                    "id": ids["sku"],
                    "code": "SN-5USES",
                    "kind": "SERIAL",
                }
            }
        },
        "brand": {
            "data": {
                "node": {
                    "__typename": "Brand",
                    "id": ids["brand"],
                    "code": "mihoyo",
                    "name": "米哈游",
                }
            }
        },
        "category": {
            "data": {
                "node": {
                    "__typename": "Category",
                    "id": ids["category"],
                    "code": "gift-pack",
                    "name": "权益礼包",
                }
            }
        },
        "channel": {
            "data": {
                "node": {
                    "__typename": "Channel",
                    "id": ids["channel"],
                    "code": "h5",
                    "public": True,
                }
            }
        },
    }


@pytest.mark.parametrize(
    ("type_name", "pk"),
    [
        ("Spaceship", 1),  # a type the API does not have
        ("ProductCursor", 1),  # a cursor is not an object
        ("Product", 2_000_000_000),
        ("Sku", 2_000_000_000),
        ("Brand", 2_000_000_000),
        ("Category", 2_000_000_000),
        ("Channel", 2_000_000_000),
    ],
)
async def test_a_well_formed_id_of_nothing_is_null(
    gql: GraphQLClient, type_name: str, pk: int
) -> None:
    assert await gql(NODE, {"id": encode_id(type_name, pk)}) == {"data": {"node": None}}


async def test_a_partner_channel_is_invisible_to_anonymous_callers(
    gql: GraphQLClient, demo: DemoCatalog
) -> None:
    assert await gql(NODE, {"id": encode_id("Channel", demo.channels["taobao"])}) == {
        "data": {"node": None}
    }


async def test_suppliers_are_invisible_to_anonymous_callers(
    gql: GraphQLClient, demo: DemoCatalog
) -> None:
    assert await gql(NODE, {"id": encode_id("Supplier", demo.suppliers["sim-fast"])}) == {
        "data": {"node": None}
    }


async def test_a_sku_of_a_withdrawn_product_is_null(
    gql: GraphQLClient, withdrawn: Withdrawn
) -> None:
    assert await gql(NODE, {"id": withdrawn.sku_id}) == {"data": {"node": None}}


@pytest.mark.parametrize("gid", ["not-an-id", "UHJvZHVjdDox!", encode_id("Product", 2**31)])
async def test_a_malformed_node_id_is_bad_user_input(gql: GraphQLClient, gid: str) -> None:
    assert outcome(await gql(NODE, {"id": gid})) == {
        "data": {"node": None},
        "errors": [{"path": ["node"], "code": "BAD_USER_INPUT", "field": "id"}],
    }
