"""A gateway with the simulated WeChat Pay and Alipay in process: the adapters reach the
simulators, and the simulators' notifications reach /webhooks/*, through the app itself
(no socket, no internet). Jobs run in the app's own worker, as in production."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import select, update

from gateway import create_app
from models import Sku, Supplier
from providers.sim_courier import Faults
from schema.relay import encode_id
from services.core.database import Database
from services.core.secret_box import SecretBox
from services.demo.payments import DemoProviders
from services.fulfilment.supplier_registry import seal_secret
from suppliers.base import Outcome
from tests.e2e.shop import ShopKeys, issue_keys, migrated_database, shop_settings
from tests.fulfilment.fakes import FakeSupplier
from tests.support import GraphQLClient

BASE = "http://quanyi.test"
PLACE = """
mutation Place($input: PlaceOrderInput!) {
  placeOrder(input: $input) { order { id number total { amount currency } } accessToken userErrors { code } }
}
"""
CREATE = """
mutation Create($input: CreatePaymentInput!) {
  createPayment(input: $input) { payment { id status clientParams } userErrors { field code message } }
}
"""
ORDER = """
query Order($id: ID!) {
  order(id: $id) {
    status paymentReference
    events { actor fromStatus toStatus }
    refunds { amount { amount currency } status reference }
  }
}
"""


class AppTransport(httpx.AsyncBaseTransport):
    """Requests to the app under test, which exists only after the transport is handed to it."""

    def __init__(self) -> None:
        self.app: Any = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await httpx.ASGITransport(app=self.app).handle_async_request(request)


@dataclass
class Till:
    """The gateway, its simulated providers, and the buyer's and operator's ways in."""

    app: Any
    db: Database
    keys: ShopKeys
    http: httpx.AsyncClient
    gql: GraphQLClient
    providers: DemoProviders
    skus: dict[str, int]

    async def place(self, sku: str = "QB-10", quantity: int = 1, channel: str = "mini",
                    buyer: dict[str, str] | None = None) -> dict[str, Any]:
        answer = await self.gql(PLACE, {"input": {
            "channel": channel, "idempotencyKey": uuid.uuid4().hex,
            "lines": [{"skuId": encode_id("Sku", self.skus[sku]), "quantity": quantity}],
            "buyer": buyer or {"phone": "13800138000", "rechargeAccount": "13800138000"},
        }})
        placed = answer["data"]["placeOrder"]
        assert placed["userErrors"] == [], placed
        return {**placed["order"], "token": placed["accessToken"]}

    async def create_payment(self, order: dict[str, Any], provider: str, method: str,
                             open_id: str | None = None) -> dict[str, Any]:
        answer = await self.gql(CREATE, {"input": {"orderId": order["id"], "provider": provider, "method": method,
                                                   "openId": open_id}}, key=order["token"])
        return answer["data"]["createPayment"]

    async def order(self, order: dict[str, Any]) -> dict[str, Any]:
        return (await self.gql(ORDER, {"id": order["id"]}, key=self.keys.admin))["data"]["order"]

    async def until(self, order: dict[str, Any], done: Callable[[dict[str, Any]], bool],
                    seconds: float = 20.0) -> dict[str, Any]:
        deadline = time.monotonic() + seconds
        while True:
            seen = await self.order(order)
            if done(seen) or time.monotonic() > deadline:
                return seen
            await asyncio.sleep(0.05)

    async def settle(self) -> None:
        """Every notification the simulators have sent so far is delivered or given up."""
        await self.providers.wechatpay.state.sim.courier.settle()
        await self.providers.alipay.state.sim.courier.settle()


@contextlib.asynccontextmanager
async def open_till(folder: Any, faults: Faults | None = None) -> AsyncIterator[Till]:
    async with migrated_database(folder) as url:
        settings = replace(shop_settings(url), payment_sim=True, public_url=BASE, worker=True, refund_check_seconds=0.5,
                           worker_poll_seconds=0.2)
        db = Database.connect(settings)
        try:
            from services.demo.seed import seed_demo

            box = SecretBox(settings.secret_key)
            await seed_demo(db, box)
            keys = await issue_keys(db)
            async with db.sessions() as session, session.begin():
                # Every demo supplier refuses every top-up: a paid top-up is refunded.
                for code in await session.scalars(select(Supplier.code)):
                    await session.execute(update(Supplier).where(Supplier.code == code).values(
                        secret_ciphertext=seal_secret(box, code, "unused")))
                skus = {row.code: row.id for row in await session.scalars(select(Sku))}
            transport = AppTransport()
            failing = {"http": lambda row, secret: FakeSupplier(row.code, default=Outcome.FAILED)}
            app = create_app(settings, payment_transport=transport, supplier_adapters=failing)
            transport.app = app
            providers: DemoProviders = app.state.demo_providers
            if faults is not None:
                for sim_app in (providers.wechatpay, providers.alipay):
                    sim_app.state.sim.courier.faults = faults
            async with LifespanManager(app):
                async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as http:
                    yield Till(app, db, keys, http, GraphQLClient(http), providers, skus)
        finally:
            await db.dispose()


@pytest.fixture(scope="module")
async def till(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Till]:
    async with open_till(tmp_path_factory.mktemp("payments")) as opened:
        yield opened
