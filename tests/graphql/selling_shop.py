"""A shop that sells end to end: its own database, orders paid and fulfilled by the test.

Its top-ups go to one in-memory supplier (sim-fast, told to succeed or fail), jobs run when
the test drains them, and its live stock feed is followed over the real WebSocket endpoint.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from httpx_ws import AsyncWebSocketSession
from sqlalchemy import select, update

from gateway import create_app
from domain.card_codes import CodeInput
from models import Order, Sku, SkuSupplier, Supplier
from schema.relay import decode_pk
from services.core.database import Database
from services.core.events import STOCK_CHANGED, stock_message
from services.core.secret_box import SecretBox
from services.core.worker import Worker
from services.fulfilment.supplier_registry import seal_secret
from services.inventory.code_import import import_codes
from services.orders.expiry import expire_once
from suppliers.base import Outcome
from tests.e2e.shop import Ledger, Shop, StockedSku, migrated_database, shop_settings, stock_shop
from tests.fulfilment.fakes import FakeSupplier
from tests.graphql.test_websocket import TRANSPORT_WS, connected, receive
from tests.support import GraphQLClient

PAY = """
mutation Pay($id: ID!, $reference: String!) {
  payOrder(orderId: $id, paymentReference: $reference) { order { status } userErrors { code } }
}
"""
STOCK_CHANGED_FEED = """
subscription Stock($channel: String!, $skuIds: [ID!]) {
  stockChanged(channel: $channel, skuIds: $skuIds) { skuId available reserved }
}
"""
SUPPLIER = "sim-fast"


@dataclass
class SellingShop(Shop):
    app: Any = None
    worker: Worker | None = None
    supplier: FakeSupplier | None = None

    async def sealed_codes(self, count: int) -> StockedSku:
        """A CARD_CODE SKU with `count` codes imported as an operator would (secrets sealed
        with the shop's key, so they can be delivered)."""
        sku = await self.shelf.card_codes(0)
        async with self.db.sessions() as session, session.begin():
            row = await session.get_one(Sku, sku.pk)
            codes = [CodeInput(row=n, secret=f"SEALED-{sku.pk}-{n:04d}") for n in range(count)]
            await import_codes(session, SecretBox(self.settings.secret_key), row, codes, now=datetime.now(UTC))
        return sku

    async def supplied(self, sku: StockedSku) -> StockedSku:
        """The SKU's top-ups go to the in-memory supplier."""
        async with self.db.sessions() as session, session.begin():
            supplier_id = await session.scalar(select(Supplier.id).where(Supplier.code == SUPPLIER))
            session.add(SkuSupplier(sku_id=sku.pk, supplier_id=supplier_id, priority=1))
        return sku

    def top_ups(self, outcome: Outcome) -> None:
        """Every top-up from now on gets this answer from the supplier."""
        assert self.supplier is not None
        self.supplier.reset(default=outcome)

    async def pay(self, order_id: str) -> str:
        answer = await self.gql(PAY, {"id": order_id, "reference": f"pay-{order_id}"}, key=self.keys.admin)
        return answer["data"]["payOrder"]["order"]["status"]

    async def fulfil(self) -> None:
        """Run every job that is due, as the gateway's worker would."""
        assert self.worker is not None
        await self.worker.drain()

    async def expire(self, order_id: str) -> int:
        """Make the order due now, then run the expiry sweep once; returns how many expired."""
        async with self.db.sessions() as session, session.begin():
            await session.execute(
                update(Order).where(Order.id == decode_pk(order_id, "Order")).values(expires_at=Order.created_at)
            )
        return await expire_once(self.app.state.db, self.app.state.broker)

    @contextlib.asynccontextmanager
    async def following(self, channel: str, *skus: StockedSku) -> AsyncIterator[Following]:
        """A subscriber of `stockChanged` for these SKUs on `channel`, live when the block starts."""
        async with connected(self.app, TRANSPORT_WS) as ws:
            await ws.send_json({"type": "connection_init", "payload": {"authorization": f"Bearer {self.keys.admin}"}})
            assert await receive(ws) == {"type": "connection_ack"}
            await ws.send_json({"id": "s", "type": "subscribe", "payload": {
                "query": STOCK_CHANGED_FEED, "variables": {"channel": channel, "skuIds": [sku.gid for sku in skus]},
            }})
            following = Following(ws)
            await following.until_live(self.app.state.broker, skus)
            yield following


@dataclass
class Following:
    ws: AsyncWebSocketSession

    async def until_live(self, broker: Any, skus: tuple[StockedSku, ...]) -> None:
        """The feed subscribes to the broker a moment after `subscribe`: announce the SKUs
        (a change of nothing) until their figures arrive, then forget those figures."""
        for _ in range(40):
            await broker.publish(STOCK_CHANGED, stock_message([sku.pk for sku in skus]))
            with contextlib.suppress(TimeoutError):
                await self.ws.receive_json(timeout=0.25)
                break
        else:
            raise AssertionError("the stock feed never came live")
        while True:
            try:
                await self.ws.receive_json(timeout=0.5)
            except TimeoutError:
                return

    async def next(self, timeout: float = 5.0) -> dict[str, Any]:
        """The next change pushed: {skuId available reserved}."""
        message = await self.ws.receive_json(timeout=timeout)
        assert message["type"] == "next", message
        return message["payload"]["data"]["stockChanged"]

    async def figures(self, *skus: StockedSku, timeout: float = 5.0) -> dict[StockedSku, dict[str, int]]:
        """The next figures of each of these SKUs, however the feed batches them."""
        wanted = {sku.gid: sku for sku in skus}
        seen: dict[StockedSku, dict[str, int]] = {}
        while len(seen) < len(wanted):
            change = await self.next(timeout)
            if change["skuId"] in wanted:
                seen[wanted[change["skuId"]]] = {"available": change["available"], "reserved": change["reserved"]}
        return seen

    async def quiet(self, within: float = 0.5) -> bool:
        """True when nothing arrives within `within` seconds."""
        try:
            await self.ws.receive_json(timeout=within)
        except TimeoutError:
            return True
        return False


@contextlib.asynccontextmanager
async def open_selling_shop(folder: Path) -> AsyncIterator[SellingShop]:
    async with migrated_database(folder) as url:
        # Expiry runs only when a test sweeps (`expire`): a background sweep would race it.
        settings = shop_settings(url, expiry_interval_seconds=3600)
        db = Database.connect(settings)
        try:
            keys, shelf = await stock_shop(db, settings)
            supplier = FakeSupplier(SUPPLIER)
            box = SecretBox(settings.secret_key)
            async with db.sessions() as session, session.begin():
                await session.execute(update(Supplier).where(Supplier.code == SUPPLIER).values(
                    adapter="fake", secret_ciphertext=seal_secret(box, SUPPLIER, "fake-secret"), timeout_seconds=1.0))
            app = create_app(settings, supplier_adapters={"fake": lambda row, secret: supplier})
            async with LifespanManager(app):
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=transport, base_url="http://quanyi.test") as http:
                    yield SellingShop(settings, db, keys, shelf, Ledger(db), GraphQLClient(http),
                                      app=app, worker=app.state.worker, supplier=supplier)
        finally:
            await db.dispose()
