"""Operators change the catalog through the API: versions keep two of them from undoing each
other, archiving keeps the past readable, listings decide what a channel sells, and every
change is recorded."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest
from asgi_lifespan import LifespanManager

from gateway import create_app
from tests.e2e.shop import Shop, ShopKeys, open_shop
from tests.graphql.catalog_admin_support import Catalog, unique
from tests.support import GraphQLClient

SKU_NODE = "query($id: ID!) { node(id: $id) { ... on Sku { code version basePrice { amount } archivedAt } } }"
ARCHIVE_SKU = """
mutation($id: ID!, $version: Int) { archiveSku(input: { id: $id, version: $version }) {
  sku { code archivedAt } userErrors { field code } } }
"""
IMPORT_CODES = """
mutation($sku: ID!, $secret: String!) { importCardCodes(skuId: $sku, codes: [{ secret: $secret }]) { imported userErrors { code } } }
"""
PLACE = """
mutation($input: PlaceOrderInput!) { placeOrder(input: $input) { order { id } accessToken userErrors { field code } } }
"""
ORDER = "query($id: ID!) { order(id: $id) { status lines { quantity unitPrice { amount } sku { code archivedAt } } } }"
CATALOG_PRODUCT = 'query($c: String!, $id: ID!) { product(channel: $c, id: $id) { slug skus { code } } }'
CHANGES = """
query($code: String!) { catalogChanges(entity: SKU, code: $code) {
  edges { node { entity code action actor before after } } } }
"""
CHANNEL_PAGE = 'query($c: String!) { products(channel: $c, first: 100) { edges { node { slug } } } }'


@pytest.fixture(scope="module")
async def shop(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Shop]:
    """A gateway on a demo database of the module's own: the channels and products made here
    leave the shared demo's lists as they are."""
    async with open_shop(tmp_path_factory.mktemp("catalog-admin")) as opened:
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


def _order(channel: str, sku_id: str, key: str) -> dict[str, object]:
    return {"channel": channel, "idempotencyKey": f"{key}-guest-key", "lines": [{"skuId": sku_id, "quantity": 1}],
            "buyer": {"phone": "13800138000"}}


async def test_of_two_updates_from_the_same_version_one_wins_and_the_other_hears_of_the_conflict(catalog: Catalog) -> None:
    product = await catalog.product()
    sku = await catalog.sku(product["id"])

    first, second = await asyncio.gather(
        catalog.update_sku(id=sku["id"], version=1, basePrice="11.00"),
        catalog.update_sku(id=sku["id"], version=1, basePrice="12.00"),
    )

    won, lost = (first, second) if first["sku"] else (second, first)
    assert won["userErrors"] == [] and won["sku"]["version"] == 2
    assert lost == {"sku": None, "userErrors": [{
        "field": "version", "message": "changed since it was read: read it again and repeat the change", "code": "CONFLICT",
    }]}
    stored = (await catalog.admin_gql(SKU_NODE, {"id": sku["id"]}))["data"]["node"]
    assert stored["basePrice"] == won["sku"]["basePrice"] and stored["version"] == 2
    changes = (await catalog.admin_gql(CHANGES, {"code": sku["code"]}))["data"]["catalogChanges"]["edges"]
    assert [edge["node"]["action"] for edge in changes] == ["UPDATED", "CREATED"]


async def test_an_update_naming_a_stale_version_changes_nothing(catalog: Catalog) -> None:
    product = await catalog.product()
    sku = await catalog.sku(product["id"])
    assert (await catalog.update_sku(id=sku["id"], version=1, name="改名"))["userErrors"] == []

    stale = await catalog.update_sku(id=sku["id"], version=1, basePrice="99.00")

    assert stale["userErrors"][0]["code"] == "CONFLICT"
    assert (await catalog.admin_gql(SKU_NODE, {"id": sku["id"]}))["data"]["node"]["basePrice"] == {"amount": "10.00"}


async def test_an_update_that_changes_nothing_keeps_the_version(catalog: Catalog) -> None:
    product = await catalog.product()
    sku = await catalog.sku(product["id"])

    same = await catalog.update_sku(id=sku["id"], version=1, basePrice="10.00")

    assert same == {"sku": {"code": sku["code"], "version": 1, "basePrice": {"amount": "10.00"}}, "userErrors": []}


async def test_an_archived_sku_keeps_its_past_orders_readable(catalog: Catalog, gql: GraphQLClient) -> None:
    channel = await catalog.channel()
    product = await catalog.product()
    sku = await catalog.sku(product["id"], basePrice="8.80")
    assert (await catalog.list_on(channel, product["id"]))["userErrors"] == []
    await catalog.admin_gql(IMPORT_CODES, {"sku": sku["id"], "secret": unique("SECRET")})
    placed = (await gql(PLACE, {"input": _order(channel, sku["id"], unique("archived"))}))["data"]["placeOrder"]
    assert placed["userErrors"] == []

    archived = (await catalog.admin_gql(ARCHIVE_SKU, {"id": sku["id"], "version": 1}))["data"]["archiveSku"]

    assert archived["userErrors"] == [] and archived["sku"]["archivedAt"] is not None
    order = (await gql(ORDER, {"id": placed["order"]["id"]}, key=placed["accessToken"]))["data"]["order"]
    assert order == {"status": "PENDING_PAYMENT", "lines": [
        {"quantity": 1, "unitPrice": {"amount": "8.80"}, "sku": {"code": sku["code"], "archivedAt": archived["sku"]["archivedAt"]}},
    ]}
    assert (await gql(CATALOG_PRODUCT, {"c": channel, "id": product["id"]}))["data"]["product"]["skus"] == []
    again = (await gql(PLACE, {"input": _order(channel, sku["id"], unique("after"))}))["data"]["placeOrder"]
    assert again["userErrors"] == [{"field": "lines.0.skuId", "code": "UNKNOWN_SKU"}]
    assert (await gql(SKU_NODE, {"id": sku["id"]}))["data"]["node"] is None  # gone from the catalog


async def test_a_sku_inside_a_bundle_on_sale_is_not_archived(catalog: Catalog, gql: GraphQLClient) -> None:
    pack = await gql('{ product(channel: "web", slug: "gamer-gift-pack") { skus { components { sku { id code } } } } }')
    qb30 = next(c["sku"]["id"] for s in pack["data"]["product"]["skus"] for c in s["components"] if c["sku"]["code"] == "QB-30")

    answer = (await catalog.admin_gql(ARCHIVE_SKU, {"id": qb30, "version": None}))
    assert answer["data"]["archiveSku"]["userErrors"] == [{"field": "id", "code": "IN_USE"}]


async def test_a_new_product_sells_only_where_it_is_listed(catalog: Catalog, gql: GraphQLClient) -> None:
    here, elsewhere = await catalog.channel(), await catalog.channel()
    older = await catalog.product()
    await catalog.list_on(here, older["id"])
    product = await catalog.product()
    sku = await catalog.sku(product["id"])
    await catalog.admin_gql(IMPORT_CODES, {"sku": sku["id"], "secret": unique("SECRET")})
    assert await _slugs(gql, here) == [older["slug"]]
    assert (await gql(CATALOG_PRODUCT, {"c": here, "id": product["id"]}))["data"]["product"] is None
    assert (await gql(SKU_NODE, {"id": sku["id"]}))["data"]["node"] is None  # listed nowhere: invisible

    listed = await catalog.list_on(here, product["id"])
    assert listed == {"listing": {"channel": here, "position": 2}, "userErrors": []}  # last
    assert await _slugs(gql, here) == [older["slug"], product["slug"]]
    assert (await gql(CATALOG_PRODUCT, {"c": here, "id": product["id"]}))["data"]["product"]["skus"] == [{"code": sku["code"]}]
    assert await _slugs(gql, elsewhere) == []
    assert (await gql(SKU_NODE, {"id": sku["id"]}))["data"]["node"]["code"] == sku["code"]

    unlisted = await catalog.list_on(here, product["id"], listed=False)
    assert unlisted == {"listing": None, "userErrors": []}
    assert await _slugs(gql, here) == [older["slug"]]
    refused = (await gql(PLACE, {"input": _order(here, sku["id"], unique("unlisted"))}))["data"]["placeOrder"]
    assert refused["userErrors"] == [{"field": "lines.0.skuId", "code": "UNKNOWN_SKU"}]


async def _slugs(gql: GraphQLClient, channel: str) -> list[str]:
    return [edge["node"]["slug"] for edge in (await gql(CHANNEL_PAGE, {"c": channel}))["data"]["products"]["edges"]]


async def test_listing_positions_order_a_channels_catalog(catalog: Catalog, gql: GraphQLClient) -> None:
    channel = await catalog.channel()
    first, second, third, fourth = [await catalog.product() for _ in range(4)]
    for product, position in ((first, 2), (second, 1), (third, 2), (fourth, None)):
        answer = await catalog.admin_gql(
            "mutation($c: String!, $p: ID!, $at: Int) { setProductListing(input: { channel: $c, productId: $p, "
            "listed: true, position: $at }) { listing { position } userErrors { code } } }",
            {"c": channel, "p": product["id"], "at": position},
        )
        assert answer["data"]["setProductListing"]["userErrors"] == []

    # Walked one at a time: by position, a tie to the older product, an unplaced one last
    walked: list[str] = []
    after = None
    while True:
        page = (await gql(PAGE, {"c": channel, "after": after}))["data"]["products"]
        walked += [edge["node"]["slug"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert walked == [second["slug"], first["slug"], third["slug"], fourth["slug"]]


PAGE = """
query($c: String!, $after: String) { products(channel: $c, first: 1, after: $after) {
  edges { node { slug } } pageInfo { hasNextPage endCursor } } }
"""


async def test_a_listing_names_a_channel_that_exists(catalog: Catalog) -> None:
    product = await catalog.product()
    answer = await catalog.list_on("no-such-channel", product["id"])
    assert answer == {"listing": None, "userErrors": [{"field": "channel", "code": "NOT_FOUND"}]}


async def test_every_change_is_recorded_with_who_and_what(catalog: Catalog, keys: ShopKeys) -> None:
    product = await catalog.product()
    sku = await catalog.sku(product["id"])
    await catalog.update_sku(id=sku["id"], version=1, basePrice="10.50", name="新名字")

    edges = (await catalog.admin_gql(CHANGES, {"code": sku["code"]}))["data"]["catalogChanges"]["edges"]

    updated, created = (edge["node"] for edge in edges)
    assert created["action"] == "CREATED" and created["before"] is None and created["after"]["basePrice"] == "10.00"
    assert updated["action"] == "UPDATED" and updated["actor"].startswith("admin:")
    assert (updated["before"]["basePrice"], updated["after"]["basePrice"]) == ("10.00", "10.50")
    assert (updated["before"]["name"], updated["after"]["name"]) == ("测试 SKU", "新名字")


async def test_the_product_center_is_for_operators(gql: GraphQLClient, keys: ShopKeys) -> None:
    create = 'mutation { createBrand(input: { code: "intruder", name: "x" }) { brand { code } userErrors { code } } }'
    as_partner = await gql(create, key=keys.taobao)
    anonymous = await gql(create)
    changes = await gql("{ catalogChanges { edges { node { code } } } }", key=keys.web)

    assert as_partner["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert changes["errors"][0]["extensions"]["code"] == "FORBIDDEN"


@pytest.fixture
async def cached(shop: Shop) -> AsyncIterator[GraphQLClient]:
    application = create_app(replace(shop.settings, response_cache=True, response_cache_seconds=60))
    async with LifespanManager(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://quanyi.test") as client:
            yield GraphQLClient(client)


async def test_a_change_is_seen_at_once_by_cached_catalog_reads(cached: GraphQLClient, keys: ShopKeys) -> None:
    catalog = Catalog(cached, keys.admin)
    channel = await catalog.channel()
    product = await catalog.product(name="旧名字")
    await catalog.list_on(channel, product["id"])
    read = 'query($c: String!, $s: String!) { product(channel: $c, slug: $s) { name } }'
    assert (await cached(read, {"c": channel, "s": product["slug"]}))["data"]["product"] == {"name": "旧名字"}

    answer = await catalog.admin_gql(
        "mutation($id: ID!) { updateProduct(input: { id: $id, version: 1, name: \"新名字\" }) { userErrors { code } } }",
        {"id": product["id"]},
    )

    assert answer["data"]["updateProduct"]["userErrors"] == []
    assert (await cached(read, {"c": channel, "s": product["slug"]}))["data"]["product"] == {"name": "新名字"}


async def test_serials_imported_without_a_count_take_the_skus_uses(catalog: Catalog, gql: GraphQLClient) -> None:
    channel = await catalog.channel()
    product = await catalog.product()
    serial = await catalog.sku(product["id"], kind="SERIAL", serialUses=5)
    await catalog.list_on(channel, product["id"])

    imported = await catalog.admin_gql(IMPORT_CODES, {"sku": serial["id"], "secret": unique("SERIAL")})

    assert imported["data"]["importCardCodes"] == {"imported": 1, "userErrors": []}
    stock = await gql('query($c: String!, $id: ID!) { product(channel: $c, id: $id) { skus { stock { available } } } }',
                      {"c": channel, "id": product["id"]})
    assert stock["data"]["product"]["skus"] == [{"stock": {"available": 5}}]


async def test_an_archived_channel_sells_nothing_and_leaves_the_public_list(catalog: Catalog, gql: GraphQLClient) -> None:
    code = unique("pop-up")
    made = await catalog.admin_gql(
        'mutation($c: String!) { createChannel(input: { code: $c, name: "快闪店", currency: "CNY", public: true }) '
        "{ channel { id version } userErrors { code } } }", {"c": code})
    channel = made["data"]["createChannel"]["channel"]
    assert code in str(await gql("{ channels { code } }"))

    archived = await catalog.admin_gql(
        "mutation($id: ID!) { archiveChannel(input: { id: $id, version: 1 }) { channel { active archivedAt } userErrors { code } } }",
        {"id": channel["id"]})

    assert archived["data"]["archiveChannel"]["channel"]["active"] is False
    assert code not in str(await gql("{ channels { code } }"))
    page = await gql('query($c: String!) { products(channel: $c) { edges { node { slug } } } }', {"c": code})
    assert page["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_a_commission_rate_is_a_decimal_string_of_at_most_four_places(catalog: Catalog) -> None:
    create = """
    mutation($code: String!, $rate: Rate) { createChannel(input: { code: $code, name: "x", currency: "CNY", commissionRate: $rate }) {
      channel { commissionRate } userErrors { field code } } }
    """
    fine = await catalog.admin_gql(create, {"code": unique("rate"), "rate": "0.0065"})
    too_fine = await catalog.admin_gql(create, {"code": unique("rate"), "rate": "0.00005"})
    a_number = await catalog.admin_gql(create, {"code": unique("rate"), "rate": 0.05})

    assert fine["data"]["createChannel"] == {"channel": {"commissionRate": "0.0065"}, "userErrors": []}
    assert too_fine["data"]["createChannel"] == {"channel": None, "userErrors": [{"field": "commissionRate", "code": "INVALID_RATE"}]}
    assert a_number["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
