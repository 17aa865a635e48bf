"""The migration to counter slots keeps every unit: an order holding units before it gives
them back to the slot it is then said to hold them in, and downgrading sums the slots back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import text

from broker import MemoryBroker
from domain.access import ANONYMOUS
from domain.orders import LineRequest
from models import Order
from services.core.database import Database
from services.core.migrate import alembic_config, upgrade
from services.core.unit_of_work import UnitOfWork
from services.orders import lifecycle
from services.orders.placing import Buyer, PlaceOrder, place_order
from tests.e2e.shop import migrated_database, shop_settings, stock_shop

BEFORE = "0033_lotteries"


@pytest.fixture
async def url(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    async with migrated_database(tmp_path_factory.mktemp("stock-slots-migration")) as url:
        yield url


async def _rows(db: Database, sql: str, **params: object) -> list[tuple[int, ...]]:
    async with db.fresh_sessions() as session:
        return [tuple(row) for row in await session.execute(text(sql), params)]


async def test_counter_stock_moves_into_slots_and_back_without_losing_a_unit(url: str) -> None:
    settings = shop_settings(url)
    db = Database.connect(settings)
    try:
        _, shelf = await stock_shop(db, settings)
        video = await shelf.counter(30)  # one slot, as before the migration
        async with UnitOfWork(db, MemoryBroker()) as uow:
            placed = await place_order(uow, PlaceOrder(
                channel="web", idempotency_key="before-slots", lines=[LineRequest(video.pk, 4)],
                buyer=Buyer(phone="13800138000", recharge_account="qq:10001"),
            ), ANONYMOUS, now=datetime.now(UTC), ttl=timedelta(hours=1))
        assert placed.order is not None
        totals = await _rows(db, "SELECT sku_id, sum(on_hand), sum(reserved) FROM stock_level GROUP BY sku_id ORDER BY sku_id")
    finally:
        await db.dispose()

    await asyncio.to_thread(command.downgrade, alembic_config(url), BEFORE)
    db = Database.connect(settings)
    try:
        assert await _rows(db, "SELECT sku_id, on_hand, reserved FROM stock_level ORDER BY sku_id") == totals
    finally:
        await db.dispose()

    await asyncio.to_thread(upgrade, url)
    db = Database.connect(settings)
    try:
        sql = "SELECT sku_id, sum(on_hand), sum(reserved) FROM stock_level GROUP BY sku_id ORDER BY sku_id"
        assert await _rows(db, sql) == totals
        slots = await _rows(db, "SELECT slot, on_hand, reserved FROM stock_level WHERE sku_id = :sku ORDER BY slot",
                            sku=video.pk)
        # Slot 0 keeps what the order holds; the 26 free units are spread over eight slots.
        assert slots == [(0, 8, 4), (1, 4, 0), (2, 3, 0), (3, 3, 0), (4, 3, 0), (5, 3, 0), (6, 3, 0), (7, 3, 0)]
        assert await _rows(db, "SELECT slot, units FROM allocation WHERE sku_id = :sku", sku=video.pk) == [(0, 4)]

        async with UnitOfWork(db, MemoryBroker()) as uow:
            order = await uow.session.get_one(Order, placed.order.id, with_for_update=True)
            assert (await lifecycle.cancel(uow, order, actor="test", now=datetime.now(UTC))).error_code is None

        assert await _rows(db, "SELECT slot, reserved FROM stock_level WHERE sku_id = :sku AND slot = 0",
                           sku=video.pk) == [(0, 0)]
        assert await _rows(db, "SELECT sum(on_hand), sum(reserved) FROM stock_level WHERE sku_id = :sku",
                           sku=video.pk) == [(30, 0)]
    finally:
        await db.dispose()
