"""A gateway whose demo suppliers are in-memory fakes; jobs are run by the test, not a loop."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import update

from broker import Broker
from config import Settings
from gateway import create_app
from models import Job, Supplier, TopUpTask
from schema.relay import encode_id
from services.core.database import Database
from services.core.jobs import READY
from services.core.secret_box import SecretBox
from services.core.worker import Worker
from services.fulfilment.supplier_registry import seal_secret
from services.settlement.prepaid import balance_of
from suppliers.base import Outcome
from tests.fulfilment.fakes import FakeSupplier
from tests.graphql.conftest import Keys, demo, keys  # noqa: F401 - fixtures shared with the GraphQL tests
from tests.support import GraphQLClient

PLACE = """
mutation Place($input: PlaceOrderInput!) {
  placeOrder(input: $input) { order { id number } accessToken userErrors { code field } }
}
"""
PAY = """
mutation Pay($id: ID!, $reference: String!) {
  payOrder(orderId: $id, paymentReference: $reference) { order { status } userErrors { code } }
}
"""
TOP_UP = """
mutation T($amount: Decimal!, $ref: String!) {
  topUpPrepaidBalance(channel: "b2b-demo", amount: $amount, reference: $ref) { userErrors { code } }
}
"""
PAY_FROM_BALANCE = """
mutation P($id: ID!) { payOrderFromBalance(orderId: $id) { order { status } userErrors { code } } }
"""
STATUS = """
query Status($id: ID!) {
  order(id: $id) { status lines { id outcome quantity codes { number secret } deliveries { channel status attempts } } }
}
"""


@dataclass
class Fulfilling:
    gql: GraphQLClient
    http: httpx.AsyncClient
    worker: Worker
    db: Database
    keys: Keys
    suppliers: dict[str, FakeSupplier]
    demo: Any
    broker: Broker
    app: Any = None

    async def place(self, *lines: tuple[str, int], channel: str = "web", key: str | None = None,
                    **buyer: str) -> dict[str, Any]:
        buyer = buyer or {"phone": "13800138000", "rechargeAccount": "13800138000"}
        answer = await self.gql(PLACE, {"input": {
            "channel": channel, "idempotencyKey": f"ff-{id(lines)}-{len(self.suppliers['sim-fast'].submissions)}-{_n()}",
            "lines": [{"skuId": _sku_id(self.demo, code), "quantity": q} for code, q in lines],
            "buyer": buyer,
        }}, key=key)
        payload = answer["data"]["placeOrder"]
        assert payload["userErrors"] == [], payload
        return {"id": payload["order"]["id"], "number": payload["order"]["number"], "token": payload["accessToken"]}

    async def pay(self, order: dict[str, Any], key: str | None = None) -> str:
        answer = await self.gql(PAY, {"id": order["id"], "reference": f"pay-{order['number']}"},
                                key=key or self.keys.admin)
        return answer["data"]["payOrder"]["order"]["status"]

    async def refunded_prepaid_order(self, amount: str) -> tuple[dict[str, Any], int]:
        """Top up b2b-demo, pay a GS-60 order from its balance and settle (the suppliers are set to fail).

        Returns the order and the balance before it was placed."""
        await self.gql(TOP_UP, {"amount": amount, "ref": f"ff-{datetime.now(UTC).timestamp()}-{_n()}"},
                       key=self.keys.admin)
        async with self.db.fresh_sessions() as session:
            before = await balance_of(session, self.demo.channels["b2b-demo"])
        order = await self.place(("GS-60", 1), channel="b2b-demo", key=self.keys.b2b)
        paid = await self.gql(PAY_FROM_BALANCE, {"id": order["id"]}, key=self.keys.b2b)
        assert paid["data"]["payOrderFromBalance"]["order"]["status"] == "PAID"
        await self.settle()
        return order, before

    async def settle(self) -> None:
        """Run jobs until nothing is due now (waits on suppliers are made due at once)."""
        for _ in range(30):
            async with self.db.sessions() as session, session.begin():
                await session.execute(update(Job).where(Job.status == READY).values(run_after=_past()))
                await session.execute(update(TopUpTask).values(next_check_at=None))
            if not await self.worker.run_once():
                return

    async def status(self, order: dict[str, Any]) -> dict[str, Any]:
        return (await self.gql(STATUS, {"id": order["id"]}, key=self.keys.admin))["data"]["order"]


_counter = [0]


def _n() -> int:
    _counter[0] += 1
    return _counter[0]


def _past() -> datetime:
    return datetime.now(UTC) - timedelta(seconds=1)


def _sku_id(catalog: Any, code: str) -> str:
    return encode_id("Sku", catalog.skus[code])


@pytest.fixture(scope="session")
async def fulfilling(
    settings: Settings, db: Database, keys: Keys, demo: Any  # noqa: F811 - the shared fixtures
) -> AsyncIterator[Fulfilling]:
    fakes = {"sim-fast": FakeSupplier("sim-fast"), "sim-backup": FakeSupplier("sim-backup")}
    box = SecretBox(settings.secret_key)
    async with db.sessions() as session, session.begin():
        for code in fakes:
            await session.execute(update(Supplier).where(Supplier.code == code).values(
                adapter="fake", secret_ciphertext=seal_secret(box, code, "fake-secret"), timeout_seconds=1.0))
    app = create_app(replace(settings, worker=False), supplier_adapters={"fake": lambda row, secret: fakes[row.code]})
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://quanyi.test") as http:
            yield Fulfilling(GraphQLClient(http), http, app.state.worker, db, keys, fakes, demo, app.state.broker, app)


@pytest.fixture
def fakes(fulfilling: Fulfilling) -> dict[str, FakeSupplier]:
    for fake in fulfilling.suppliers.values():
        fake.reset(default=Outcome.SUCCEEDED)
    fulfilling.app.state.supplier_health.forget()  # failures of an earlier test do not hold this one's top-ups
    return fulfilling.suppliers
