"""The migration to quota slots keeps every quota: downgrading sums a quota's slots back
into one row that its open orders' uses name, and upgrading makes that row slot 0, from
which a cancelled order's units are given back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import select, text

from broker import MemoryBroker
from domain.access import ANONYMOUS
from domain.orders import LineRequest
from models import Channel, Order
from services.core.database import Database
from services.core.migrate import alembic_config, upgrade
from services.core.unit_of_work import UnitOfWork
from services.inventory import quotas
from services.orders import lifecycle
from services.orders.placing import Buyer, PlaceOrder, place_order
from tests.e2e.shop import migrated_database, shop_settings, stock_shop

BEFORE = "0035_market_refund_decisions"


@pytest.fixture
async def url(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    async with migrated_database(tmp_path_factory.mktemp("quota-slots-migration")) as url:
        yield url


async def _rows(db: Database, sql: str, **params: object) -> list[tuple[int, ...]]:
    async with db.fresh_sessions() as session:
        return [tuple(row) for row in await session.execute(text(sql), params)]


async def test_a_quota_in_slots_goes_back_to_one_row_and_returns_as_slot_0(url: str) -> None:
    settings = shop_settings(url)
    db = Database.connect(settings)
    try:
        _, shelf = await stock_shop(db, settings)
        coins = await shelf.card_codes(20)
        async with UnitOfWork(db, MemoryBroker()) as uow:
            web = await uow.session.scalar(select(Channel.id).where(Channel.code == "web"))
            assert web is not None
            await quotas.set_quota(uow.session, web, coins.pk, 8, 4)  # 2 in each slot
        async with UnitOfWork(db, MemoryBroker()) as uow:
            placed = await place_order(uow, PlaceOrder(
                channel="web", idempotency_key="before-quota-slots", lines=[LineRequest(coins.pk, 5)],
                buyer=Buyer(phone="13800138000"),
            ), ANONYMOUS, now=datetime.now(UTC), ttl=timedelta(hours=1))
        assert placed.order is not None
        assert await _rows(db, "SELECT count(*) FROM quota_use WHERE sku_id = :sku", sku=coins.pk) == [(3,)]
    finally:
        await db.dispose()

    await asyncio.to_thread(command.downgrade, alembic_config(url), BEFORE)
    db = Database.connect(settings)
    try:
        quota = await _rows(db, "SELECT id, quota, used FROM channel_quota WHERE sku_id = :sku", sku=coins.pk)
        assert [(quota_, used) for _, quota_, used in quota] == [(8, 5)]
        uses = await _rows(db, "SELECT DISTINCT quota_id FROM quota_use WHERE sku_id = :sku", sku=coins.pk)
        assert uses == [(quota[0][0],)]
    finally:
        await db.dispose()

    await asyncio.to_thread(upgrade, url)
    db = Database.connect(settings)
    try:
        sql = "SELECT slot, quota, used FROM channel_quota WHERE sku_id = :sku ORDER BY slot"
        assert await _rows(db, sql, sku=coins.pk) == [(0, 8, 5)]
        async with UnitOfWork(db, MemoryBroker()) as uow:
            order = await uow.session.get_one(Order, placed.order.id, with_for_update=True)
            assert (await lifecycle.cancel(uow, order, actor="test", now=datetime.now(UTC))).error_code is None
        assert await _rows(db, sql, sku=coins.pk) == [(0, 8, 0)]
    finally:
        await db.dispose()
