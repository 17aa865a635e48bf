"""The migration that starts recording quota uses gives the orders already open theirs:
newest first and never more than the quota counts, so an order placed before the quota,
cancelled after the upgrade, gives nothing back."""

from __future__ import annotations

import importlib.util
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType

import pytest
from sqlalchemy import delete, func, select

from broker import MemoryBroker
from domain.access import ANONYMOUS
from domain.orders import LineRequest
from models import Channel, ChannelQuota, Order, OrderLine, QuotaUse
from services.core.database import Database
from services.core.migrate import MIGRATIONS
from services.core.unit_of_work import UnitOfWork
from services.inventory import quotas
from services.orders import lifecycle
from services.orders.placing import Buyer, PlaceOrder, place_order
from tests.e2e.shop import Shelf, StockedSku, migrated_database, shop_settings, stock_shop


def _migration() -> ModuleType:
    path = next(Path(MIGRATIONS, "versions").glob("*_quota_uses.py"))
    spec = importlib.util.spec_from_file_location("quota_uses_migration", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class Store:
    db: Database
    shelf: Shelf
    broker: MemoryBroker

    async def place(self, sku: StockedSku, quantity: int) -> int:
        command = PlaceOrder(channel="web", idempotency_key=f"backfill-{sku.pk}-{datetime.now(UTC).timestamp()}",
                             lines=[LineRequest(sku.pk, quantity)], buyer=Buyer(phone="13800138000"))
        async with UnitOfWork(self.db, self.broker) as uow:
            placed = await place_order(uow, command, ANONYMOUS, now=datetime.now(UTC), ttl=timedelta(hours=1))
        assert placed.order is not None, placed.refusals
        return placed.order.id

    async def cancel(self, order_id: int) -> None:
        async with UnitOfWork(self.db, self.broker) as uow:
            order = await uow.session.get_one(Order, order_id, with_for_update=True)
            assert (await lifecycle.cancel(uow, order, actor="test", now=datetime.now(UTC))).error_code is None

    async def set_quota(self, sku: StockedSku, quota: int) -> None:
        async with self.db.sessions() as session, session.begin():
            channel_id = await session.scalar(select(Channel.id).where(Channel.code == "web"))
            # One slot: quotas were one row each when this migration ran.
            await quotas.set_quota(session, channel_id, sku.pk, quota, slots=1)

    async def used(self, sku: StockedSku) -> int:
        async with self.db.sessions() as session:
            return await session.scalar(select(func.sum(ChannelQuota.used)).where(ChannelQuota.sku_id == sku.pk)) or 0

    async def uses(self, sku: StockedSku) -> list[tuple[int, int]]:
        """(order id, units) of every use of the SKU's quota, newest order first."""
        async with self.db.sessions() as session:
            found = await session.execute(
                select(OrderLine.order_id, QuotaUse.units).join(OrderLine, OrderLine.id == QuotaUse.line_id)
                .where(QuotaUse.sku_id == sku.pk).order_by(OrderLine.order_id.desc())
            )
            return [(order_id, units) for order_id, units in found]


@pytest.fixture(scope="module")
async def store(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Store]:
    async with migrated_database(tmp_path_factory.mktemp("quota-backfill")) as url:
        settings = shop_settings(url)
        db = Database.connect(settings)
        try:
            _, shelf = await stock_shop(db, settings)
            yield Store(db, shelf, MemoryBroker())
        finally:
            await db.dispose()


async def test_open_orders_get_their_uses_newest_first_up_to_what_the_quota_counts(store: Store) -> None:
    coins = await store.shelf.card_codes(30)
    before_the_quota = await store.place(coins, 3)
    await store.set_quota(coins, 10)
    under_the_quota = await store.place(coins, 4)
    cancelled = await store.place(coins, 2)
    await store.cancel(cancelled)
    # As the database was before the upgrade: the quota counts 4, nothing says who took them.
    async with store.db.sessions() as session, session.begin():
        await session.execute(delete(QuotaUse))

    async with store.db.engine.begin() as connection:
        recorded = await connection.run_sync(_migration().record_open_orders)
    await store.cancel(before_the_quota)
    used_after_the_older_order_ended = await store.used(coins)
    await store.cancel(under_the_quota)

    assert recorded == 1
    assert used_after_the_older_order_ended == 4
    assert await store.used(coins) == 0
    assert [order_id for order_id, _ in await store.uses(coins)] == [under_the_quota]
