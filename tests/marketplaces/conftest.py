"""A gateway whose `taobao` channel is connected to a simulated marketplace in process; the
demo suppliers are fakes, and jobs are run by the test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import String, cast, delete, select, update

from config import Settings
from gateway import create_app
from marketplaces import signing, wire
from marketplaces.http import KIND, OpenPlatformAdapter
from marketplaces.simulator import Marketplace, create_marketplace
from models import Job, MarketplaceConnection, Supplier, TopUpTask
from services.core.database import Database
from services.core.jobs import READY
from services.core.secret_box import SecretBox
from services.core.worker import Worker
from services.fulfilment.supplier_registry import seal_secret
from services.marketplace_events.connected import CONNECTED
from services.marketplaces import connections
from suppliers.base import Outcome
from tests.fulfilment.fakes import FakeSupplier
from tests.graphql.conftest import Keys, demo, keys  # noqa: F401 - fixtures shared with the GraphQL tests
from tests.support import GraphQLClient

KEY, SECRET = "23456789", "market-app-secret"

TRADES = """
query Trades($channel: String, $status: String, $first: Int) {
  marketplaceTrades(channel: $channel, status: $status, first: $first) {
    edges { node { id tid status reason source seen orderId orderNumber refundId refundStatus refundReport { status attempts error }
                   deliveryReport { status attempts error } } }
  }
}
"""
ORDER = """
query Order($id: ID!) { order(id: $id) { status lines { quantity codes { secret } } } }
"""


@dataclass
class Market:
    gql: GraphQLClient
    http: httpx.AsyncClient  # to the gateway
    shop: httpx.AsyncClient  # to the marketplace's control API
    sim: Marketplace
    worker: Worker
    market_worker: Worker
    db: Database
    keys: Keys
    fakes: dict[str, FakeSupplier]
    app: Any

    async def sell(self, outer_id: str, quantity: int = 1, *, price: str = "999.00", account: str | None = None,
                   phone: str = "13800138000") -> str:
        answer = await self.shop.post("/control/trades", json={
            "outer_id": outer_id, "quantity": quantity, "price": price, "account": account, "phone": phone})
        return str(answer.json()["trade"]["tid"])

    async def faults(self, **changes: object) -> None:
        assert (await self.shop.post("/control", json=changes)).status_code == 200

    async def make_due(self) -> None:
        async with self.db.sessions() as session, session.begin():
            await session.execute(update(Job).where(Job.status == READY)
                                  .values(run_after=datetime.now(UTC) - timedelta(seconds=1)))
            await session.execute(update(TopUpTask).values(next_check_at=None))

    async def pull(self) -> None:
        """One run of the pull job (and anything else the marketplace worker has due)."""
        await self.make_due()
        await self.market_worker.run_once()

    async def settle(self, rounds: int = 30) -> None:
        """Run every job, pulls, fulfilment and reports, until nothing is left due."""
        for _ in range(rounds):
            await self.make_due()
            ran = await self.worker.run_once()
            ran += await self.market_worker.run_once()
            if not ran or ran == 1 and await self._only_pull_left():
                return

    async def _only_pull_left(self) -> bool:
        async with self.db.fresh_sessions() as session:
            kinds = set(await session.scalars(select(Job.kind).where(Job.status == READY)))
        return kinds <= {connections.PULL}

    async def trade(self, tid: str) -> dict[str, Any] | None:
        answer = await self.gql(TRADES, {"channel": "taobao", "first": 100}, key=self.keys.admin)
        found = [edge["node"] for edge in answer["data"]["marketplaceTrades"]["edges"] if edge["node"]["tid"] == tid]
        return found[0] if found else None

    def push_params(self, topic: str, content: dict[str, Any], *, at: datetime | None = None,
                    secret: str = SECRET) -> dict[str, str]:
        return signing.signed(secret, {"app_key": KEY, "timestamp": signing.timestamp(at or datetime.now(UTC)),
                                       "topic": topic, "content": wire.orjson_text(content)})

    async def push(self, params: dict[str, str]) -> httpx.Response:
        return await self.http.post("/marketplaces/taobao/push", data=params)

    async def order(self, tid: str) -> dict[str, Any]:
        trade = await self.trade(tid)
        assert trade is not None and trade["orderId"] is not None, trade
        return (await self.gql(ORDER, {"id": trade["orderId"]}, key=self.keys.admin))["data"]["order"]

    async def sim_trade(self, tid: str) -> dict[str, Any]:
        found = [t for t in (await self.shop.get("/control/trades")).json() if t["tid"] == tid]
        return found[0]

    async def deliveries(self, tid: str) -> list[dict[str, Any]]:
        return [d for d in (await self.shop.get("/control/deliveries")).json() if d["tid"] == tid]


@pytest.fixture(scope="module")  # torn down before other modules run: their orders take the fast path again
async def market(settings: Settings, db: Database, keys: Keys, demo: Any) -> AsyncIterator[Market]:  # noqa: F811
    fakes = {"sim-fast": FakeSupplier("sim-fast"), "sim-backup": FakeSupplier("sim-backup")}
    box = SecretBox(settings.secret_key)
    async with db.sessions() as session, session.begin():
        for code in fakes:
            await session.execute(update(Supplier).where(Supplier.code == code).values(
                adapter="fake", secret_ciphertext=seal_secret(box, code, "fake-secret"), timeout_seconds=1.0))
    sim_app = create_marketplace(KEY, SECRET, seed=3)
    async with sim_app.router.lifespan_context(sim_app):
        shop = httpx.AsyncClient(transport=httpx.ASGITransport(app=sim_app), base_url="http://market.test")
        adapters = {KIND: lambda row, secret: OpenPlatformAdapter(row.base_url, row.app_key, secret, client=shop)}
        app = create_app(replace(settings, worker=False), supplier_adapters={"fake": lambda row, secret: fakes[row.code]},
                         marketplace_adapters=adapters)
        async with LifespanManager(app):
            async with db.sessions() as session, session.begin():
                await connections.configure(session, box, channel="taobao", base_url="http://market.test",
                                            app_key=KEY, app_secret=SECRET, now=datetime.now(UTC),
                                            outer_ids={"TB-QB10": "QB-10"})
            await CONNECTED.refresh(db)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://quanyi.test") as http:
                yield Market(GraphQLClient(http), http, shop, sim_app.state.marketplace, app.state.worker,
                             app.state.market_worker, db, keys, fakes, app)
            # Other tests' orders take the fast path again: no channel has a marketplace.
            async with db.sessions() as session, session.begin():
                # Keyed apart as well as DONE: SQLite may give the next module's connection the same
                # id, and a DONE job of the same key would keep its pull from being queued.
                await session.execute(update(Job).where(Job.kind == connections.PULL)
                                      .values(status="DONE", key=Job.key + ":ended:" + cast(Job.id, String)))
                await session.execute(delete(MarketplaceConnection))
            await CONNECTED.refresh(db)
        await shop.aclose()


@pytest.fixture
async def shop(market: Market) -> Market:
    """Faults off, suppliers answering, and nothing left due from an earlier test."""
    await market.faults(duplicate_rate=0.0, pull_fail_rate=0.0, ship_fail_rate=0.0, fail_pulls=0, fail_ships=0,
                        failure="error", latency_ms=0)
    for fake in market.fakes.values():
        fake.reset(default=Outcome.SUCCEEDED)
    market.app.state.supplier_health.forget()
    await market.settle()
    return market
