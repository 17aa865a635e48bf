"""An operator's own catalog, from an empty database (migrated, no demo data), to a guest who
buys a card code and a direct top-up on a new channel and receives both.

The top-up goes to the simulated supplier, reached over its real HTTP protocol (in process):
the supplier is created and connected through the API, with no restart.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import update
from starlette.applications import Starlette

from domain.access import Role
from gateway import create_app
from models import Job, TopUpTask
from models import Supplier as SupplierRow
from services.access.keys import issue_key
from services.core.database import Database
from services.core.jobs import READY
from services.core.worker import Worker
from suppliers.base import SupplierAdapter
from suppliers.http import HttpSupplier
from suppliers.simulator import create_simulator
from tests.e2e.shop import migrated_database, shop_settings
from tests.support import GraphQLClient

SUPPLIER_SECRET = "acme-shared-signing-secret"

CREATE_CHANNEL = """
mutation { createChannel(input: { code: "my-shop", name: "My shop", kind: OWN_SITE, currency: "CNY",
    commissionRate: "0.01", public: true }) { channel { id code public version } userErrors { field code } } }
"""
CREATE_BRAND = 'mutation { createBrand(input: { code: "acme", name: "Acme" }) { brand { id code } userErrors { code } } }'
CREATE_CATEGORY = 'mutation { createCategory(input: { code: "gift-cards", name: "Gift cards" }) { category { code } userErrors { code } } }'
CREATE_SUPPLIER = """
mutation($url: String!, $secret: String!) { createSupplier(input: { code: "acme-topups", name: "Acme top-ups",
    baseUrl: $url, secret: $secret, timeoutSeconds: 5 }) { supplier { code secretSet baseUrl } userErrors { field code } } }
"""
CREATE_PRODUCT = """
mutation { createProduct(input: { brand: "acme", category: "gift-cards", name: "Acme card", slug: "acme-card",
    description: "Acme gift card and top-up", imageUrls: ["https://img.example/acme.png"], attributes: { region: "CN" } }) {
    product { id slug imageUrls attributes } userErrors { field code } } }
"""
CREATE_SKU = """
mutation($input: CreateSkuInput!) { createSku(input: $input) {
    sku { id code kind version rechargeAccountFormats suppliers { priority productCode cost { amount } supplier { code } } }
    userErrors { field message code } } }
"""
LIST = """
mutation($product: ID!) { setProductListing(input: { channel: "my-shop", productId: $product, listed: true }) {
    listing { channel position } userErrors { field code } } }
"""
IMPORT_CODES = """
mutation($sku: ID!) { importCardCodes(skuId: $sku, codes: [{ secret: "ACME-AAAA-1111" }, { secret: "ACME-BBBB-2222" }]) {
    imported duplicates userErrors { code } } }
"""
TOP_UP_STOCK = """
mutation($sku: ID!) { setTopUpStock(input: { skuId: $sku, onHand: 10 }) { sku { stock { available } } userErrors { code } } }
"""
CATALOG = """
{ products(channel: "my-shop") { edges { node { slug skus { code price { amount } stock { available } } } } } }
"""
PLACE = """
mutation($input: PlaceOrderInput!) { placeOrder(input: $input) {
    order { id number status total { amount } } accessToken userErrors { field code } } }
"""
PAY = """
mutation($id: ID!) { payOrder(orderId: $id, paymentReference: "pay-own-catalog") { order { status } userErrors { code } } }
"""
MY_ORDER = """
query($id: ID!) { order(id: $id) { status lines { quantity sku { code } codes(reveal: true) { secret } } } }
"""


@dataclass
class OwnShop:
    gql: GraphQLClient
    admin: str
    worker: Worker
    db: Database
    simulator: Starlette

    async def admin_gql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        return await self.gql(query, variables, key=self.admin)

    async def settle(self) -> None:
        """Run the jobs until none is due (waits on the supplier made due at once)."""
        for _ in range(30):
            async with self.db.sessions() as session, session.begin():
                past = datetime.now(UTC) - timedelta(seconds=1)
                await session.execute(update(Job).where(Job.status == READY).values(run_after=past))
                await session.execute(update(TopUpTask).values(next_check_at=None))
            if not await self.worker.run_once():
                return


@pytest.fixture(scope="module")
async def own_shop(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[OwnShop]:
    simulator = create_simulator(SUPPLIER_SECRET, mode="sync")

    def over_asgi(row: SupplierRow, secret: str) -> SupplierAdapter | None:
        # The supplier's real protocol, served in this process instead of over a socket.
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=simulator), base_url=row.base_url or "")
        return HttpSupplier(row.code, row.base_url or "", secret, timeout_seconds=row.timeout_seconds, client=client)

    folder: Path = tmp_path_factory.mktemp("own-catalog")
    async with migrated_database(folder) as url:
        settings = replace(shop_settings(url), worker=False)
        db = Database.connect(settings)
        try:
            async with db.sessions() as session, session.begin():
                admin = await issue_key(session, role=Role.ADMIN, channel=None, name="operator")
            app = create_app(settings, supplier_adapters={"http": over_asgi})
            async with simulator.state.simulator.running(simulator), LifespanManager(app):
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=transport, base_url="http://quanyi.test") as http:
                    yield OwnShop(GraphQLClient(http), admin.plaintext, app.state.worker, db, simulator)
        finally:
            await db.dispose()


async def test_from_an_empty_database_a_guest_buys_a_code_and_a_top_up_on_a_new_channel(own_shop: OwnShop) -> None:
    shop = own_shop
    # Given an empty catalog, an operator creates a channel, a brand, a category and a supplier
    channel = (await shop.admin_gql(CREATE_CHANNEL))["data"]["createChannel"]
    assert channel["userErrors"] == [] and channel["channel"]["public"] is True
    assert (await shop.admin_gql(CREATE_BRAND))["data"]["createBrand"]["userErrors"] == []
    assert (await shop.admin_gql(CREATE_CATEGORY))["data"]["createCategory"]["userErrors"] == []
    supplier = (await shop.admin_gql(CREATE_SUPPLIER, {"url": "http://acme.test", "secret": SUPPLIER_SECRET}))
    assert supplier["data"]["createSupplier"] == {
        "supplier": {"code": "acme-topups", "secretSet": True, "baseUrl": "http://acme.test"}, "userErrors": [],
    }
    # and a product with a card-code SKU and a top-up SKU fulfilled by that supplier
    product = (await shop.admin_gql(CREATE_PRODUCT))["data"]["createProduct"]
    assert product["userErrors"] == []
    assert product["product"]["attributes"] == {"region": "CN"}
    product_id = product["product"]["id"]
    card = (await shop.admin_gql(CREATE_SKU, {"input": {
        "productId": product_id, "code": "ACME-10", "name": "Acme card 10", "kind": "CARD_CODE", "basePrice": "10.00",
        "faceValue": "10.00", "supplierCost": "9.00",
    }}))["data"]["createSku"]
    assert card["userErrors"] == []
    top_up = (await shop.admin_gql(CREATE_SKU, {"input": {
        "productId": product_id, "code": "ACME-TOPUP-30", "name": "Acme top-up 30", "kind": "DIRECT_RECHARGE",
        "basePrice": "30.00", "faceValue": "30.00", "rechargeAccountFormats": ["PHONE"],
        "suppliers": [{"supplier": "acme-topups", "productCode": "ACME-P30", "cost": "27.50"}],
    }}))["data"]["createSku"]
    assert top_up == {"sku": {
        "id": top_up["sku"]["id"], "code": "ACME-TOPUP-30", "kind": "DIRECT_RECHARGE", "version": 1,
        "rechargeAccountFormats": ["PHONE"],
        "suppliers": [{"priority": 1, "productCode": "ACME-P30", "cost": {"amount": "27.50"}, "supplier": {"code": "acme-topups"}}],
    }, "userErrors": []}
    card_id, top_up_id = card["sku"]["id"], top_up["sku"]["id"]
    lines = [{"skuId": card_id, "quantity": 1}, {"skuId": top_up_id, "quantity": 1}]
    buyer = {"phone": "13800138000", "rechargeAccount": "13800138000"}

    # A new product is on no channel: not in the catalog, and not for sale
    assert (await shop.gql(CATALOG))["data"]["products"]["edges"] == []
    refused = await shop.gql(PLACE, {"input": {"channel": "my-shop", "idempotencyKey": "own-catalog-early-0001", "lines": lines, "buyer": buyer}})
    assert refused["data"]["placeOrder"]["userErrors"] == [{"field": "lines.0.skuId", "code": "UNKNOWN_SKU"}]

    # When the operator lists it, imports codes and sets the top-up's stock
    listed = (await shop.admin_gql(LIST, {"product": product_id}))["data"]["setProductListing"]
    assert listed == {"listing": {"channel": "my-shop", "position": 1}, "userErrors": []}
    codes = (await shop.admin_gql(IMPORT_CODES, {"sku": card_id}))["data"]["importCardCodes"]
    assert codes == {"imported": 2, "duplicates": 0, "userErrors": []}
    stock = (await shop.admin_gql(TOP_UP_STOCK, {"sku": top_up_id}))["data"]["setTopUpStock"]
    assert stock == {"sku": {"stock": {"available": 10}}, "userErrors": []}
    assert (await shop.gql(CATALOG))["data"]["products"]["edges"] == [{"node": {"slug": "acme-card", "skus": [
        {"code": "ACME-10", "price": {"amount": "10.00"}, "stock": {"available": 2}},
        {"code": "ACME-TOPUP-30", "price": {"amount": "30.00"}, "stock": {"available": 10}},
    ]}}]

    # A guest's account outside the top-up's format is refused before anything is reserved
    wrong = await shop.gql(PLACE, {"input": {"channel": "my-shop", "idempotencyKey": "own-catalog-qq-account-01", "lines": lines,
                                             "buyer": {"phone": "13800138000", "rechargeAccount": "10001"}}})
    assert wrong["data"]["placeOrder"]["userErrors"] == [{"field": "buyer.rechargeAccount", "code": "INVALID_RECHARGE_ACCOUNT"}]

    # Then a guest buys both, pays, and receives the code and the top-up
    placed = (await shop.gql(PLACE, {"input": {"channel": "my-shop", "idempotencyKey": "own-catalog-guest-0001", "lines": lines,
                                               "buyer": buyer}}))["data"]["placeOrder"]
    assert placed["userErrors"] == [] and placed["order"]["total"] == {"amount": "40.00"}
    assert (await shop.admin_gql(PAY, {"id": placed["order"]["id"]}))["data"]["payOrder"]["order"]["status"] == "PAID"
    await shop.settle()

    mine = (await shop.gql(MY_ORDER, {"id": placed["order"]["id"]}, key=placed["accessToken"]))["data"]["order"]
    assert mine["status"] == "DELIVERED"
    by_code = {line["sku"]["code"]: line["codes"] for line in mine["lines"]}
    assert [c["secret"] for c in by_code["ACME-10"]][0] in {"ACME-AAAA-1111", "ACME-BBBB-2222"}
    assert by_code["ACME-TOPUP-30"] == []
    submissions = [s.as_json() for s in shop.simulator.state.simulator.ledger.all()]
    assert [(s["product"], s["status"]) for s in submissions] == [("ACME-P30", "SUCCEEDED")]
    # The supplier's own price is what its delivery cost
    owed = await shop.admin_gql('{ supplierBalance(supplier: "acme-topups") { amount } }')
    assert owed == {"data": {"supplierBalance": {"amount": "-27.50"}}}
