"""Which reads a read replica serves, and which stay on the primary, on either backend.

The "replica" here is a second database seeded like the primary and never written again, so
an answer shows where it was read: the replica still holds what the primary held before the
test changed it. (A real streaming replica that lags: tests/e2e/test_read_replica.py.)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from models import Sku
from schema.relay import encode_id
from services.core.database import Database
from tests.e2e.shop import Shop, StockedSku, migrated_database, open_shop, order_input, shop_settings, stock_shop
from tests.graphql.test_websocket import TRANSPORT_WS, acknowledged, connected, receive
from tests.outages import free_port

CATALOG = """
query Catalog($slug: String!) { product(channel: "web", slug: $slug) { name skus { code name price { amount } } } }
"""
PAGE = """
query Page { products(channel: "web", first: 50) { edges { node { skus { code name } } } } }
"""
UPDATE_SKU = """
mutation Update($input: UpdateSkuInput!) {
  updateSku(input: $input) { sku { code name basePrice { amount } price { amount } } userErrors { code } } }
"""
PLACE = """
mutation Place($input: PlaceOrderInput!) {
  placeOrder(input: $input) { order { id number status } accessToken userErrors { code } } }
"""
ORDER = """
query Order($id: ID!) { order(id: $id) { number status lines { quantity sku { code } } } }
"""


@pytest.fixture(scope="module")
async def replicated(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[Shop, StockedSku]]:
    folder = tmp_path_factory.mktemp("read-replica")
    (folder / "replica").mkdir()
    (folder / "primary").mkdir()
    async with migrated_database(folder / "replica") as replica_url:
        replica = Database.connect(shop_settings(replica_url))
        try:
            await stock_shop(replica, shop_settings(replica_url))  # the same demo catalog as the primary
        finally:
            await replica.dispose()
        async with open_shop(folder / "primary", database_read_url=replica_url) as shop:
            coins = await shop.shelf.card_codes(5)  # on the primary only
            yield shop, coins


async def _ready(shop: Shop) -> dict[str, Any]:
    response = await shop.client.http.get("/readyz")
    return dict(response.json())


async def _until_served_by(shop: Shop, server: str) -> dict[str, Any]:
    for _ in range(100):
        ready = await _ready(shop)
        if ready.get("replica", {}).get("servedBy") == server:
            return ready
        await asyncio.sleep(0.05)
    raise AssertionError(f"reads never went to the {server}: {ready}")


async def _sku(db: Database, code: str) -> Sku:
    async with db.fresh_sessions() as session:
        found = await session.scalar(select(Sku).where(Sku.code == code))
        assert found is not None
        return found


async def test_catalog_reads_come_from_the_replica_and_readyz_says_so(replicated: tuple[Shop, StockedSku]) -> None:
    shop, _ = replicated
    ready = await _until_served_by(shop, "replica")
    assert (ready["status"], ready["replica"]["status"], ready["replica"]["maxLagSeconds"]) == ("ok", "ok", 5.0)

    # Given a SKU renamed on the primary alone (the replica never hears of it)
    async with shop.db.sessions() as session, session.begin():
        (await session.scalar(select(Sku).where(Sku.code == "NE-50"))).name = "renamed on the primary"  # type: ignore[union-attr]

    # Then the catalog still shows the replica's name, on a product's page and on a page of
    # products (answered from a plan, over a connection of its own)
    answer = await shop.gql(CATALOG, {"slug": "netease-one-card"})
    names = {sku["code"]: sku["name"] for sku in answer["data"]["product"]["skus"]}
    page = await shop.gql(PAGE)
    listed = {sku["code"]: sku["name"] for edge in page["data"]["products"]["edges"] for sku in edge["node"]["skus"]}
    assert names["NE-50"] == listed["NE-50"] == "网易一卡通 50 元", (names, listed)


async def test_an_operators_change_is_in_its_own_answer_though_the_replica_lacks_it(
    replicated: tuple[Shop, StockedSku],
) -> None:
    shop, _ = replicated
    await _until_served_by(shop, "replica")
    sku = await _sku(shop.db, "NE-15")

    # When an operator renames the SKU and changes its price
    answer = await shop.gql(UPDATE_SKU, {"input": {"id": encode_id("Sku", sku.id), "version": sku.version,
                                                   "name": "网易一卡通 15 元（新）", "basePrice": "88.00"}}, key=shop.keys.admin)

    # Then the mutation's answer shows both: every read of the operation went to the primary,
    # the price too, which a loader reads (the replica still has 15.00)
    assert answer == {"data": {"updateSku": {"sku": {
        "code": "NE-15", "name": "网易一卡通 15 元（新）", "basePrice": {"amount": "88.00"}, "price": {"amount": "88.00"},
    }, "userErrors": []}}}
    # And once the replica is measured current again (a change heard sends reads to the
    # primary until then), catalog reads are the replica's, which never got the change
    await _until_served_by(shop, "replica")
    catalog = await shop.gql(CATALOG, {"slug": "netease-one-card"})
    names = {s["code"]: s["name"] for s in catalog["data"]["product"]["skus"]}
    assert names["NE-15"] == "网易一卡通 15 元", names


async def test_a_buyer_reads_the_order_just_placed_though_the_replica_lacks_it(
    replicated: tuple[Shop, StockedSku],
) -> None:
    shop, coins = replicated
    await _until_served_by(shop, "replica")

    placed = (await shop.gql(PLACE, {"input": order_input((coins, 1))}))["data"]["placeOrder"]
    assert placed["userErrors"] == [], placed

    answer = await shop.gql(ORDER, {"id": placed["order"]["id"]}, key=placed["accessToken"])
    assert answer == {"data": {"order": {
        "number": placed["order"]["number"], "status": "PENDING_PAYMENT", "lines": [{"quantity": 1, "sku": {"code": coins.code}}],
    }}}


async def test_a_mutation_over_websocket_answers_from_the_primary_too(replicated: tuple[Shop, StockedSku]) -> None:
    shop, _ = replicated
    await _until_served_by(shop, "replica")
    sku = await _sku(shop.db, "NE-50")
    app = shop.client.http._transport.app  # type: ignore[attr-defined]  # the shop's gateway, in process
    update = {"id": encode_id("Sku", sku.id), "version": sku.version, "name": sku.name, "basePrice": "51.00"}

    async with connected(app, TRANSPORT_WS, {"authorization": f"Bearer {shop.keys.admin}"}) as ws:
        await acknowledged(ws)
        await ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": UPDATE_SKU, "variables": {"input": update}}})

        assert await receive(ws) == {"id": "1", "type": "next", "payload": {"data": {"updateSku": {"sku": {
            "code": "NE-50", "name": sku.name, "basePrice": {"amount": "51.00"}, "price": {"amount": "51.00"},
        }, "userErrors": []}}}}


async def test_an_unreachable_replica_leaves_reads_to_the_primary(tmp_path: Path) -> None:
    nobody = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/quanyi"  # nothing listens there
    async with open_shop(tmp_path, database_read_url=nobody) as shop:
        # Then the catalog answers from the primary
        answer = await shop.gql(CATALOG, {"slug": "netease-one-card"})
        assert answer["data"]["product"]["name"]
        assert "errors" not in answer
        # And /readyz says the replica is set aside: degraded, still ready
        response = await shop.client.http.get("/readyz")
        body = response.json()
        assert (response.status_code, body["status"], body["database"]) == (200, "degraded", "ok")
        assert body["replica"] == {"status": "unreachable", "servedBy": "primary", "lagSeconds": None, "maxLagSeconds": 5.0}
