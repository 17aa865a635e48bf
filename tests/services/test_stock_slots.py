"""A top-up SKU's counter stock spread over slots: buyers racing over uneven slots sell
exactly the stock, an order draws from several slots when no one holds enough, releases
and sales act on the slots the order took from, and setting the stock mid-sale moves
units between slots without losing or making any.

Each race runs on both placement paths: PostgreSQL's driver path (placement_pg.py) and the
general one (on SQLite, the general one twice).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from broker import MemoryBroker
from domain.access import ANONYMOUS
from domain.orders import LineRequest
from models import Allocation, Order, OrderLine, StockLevel
from services.core.database import Database
from services.core.unit_of_work import UnitOfWork
from services.inventory.counters import CounterRefused, set_on_hand
from services.inventory.slots import sell_held
from services.inventory.stock import stock_for
from services.orders import lifecycle
from services.orders.placing import Buyer, PlaceOrder, place_order
from tests.e2e.shop import Shelf, StockedSku, migrated_database, shop_settings, stock_shop

HOUR = timedelta(hours=1)


@dataclass
class Store:
    db: Database
    shelf: Shelf
    broker: MemoryBroker

    async def slotted(self, *on_hand: int) -> StockedSku:
        """A top-up SKU whose slot n holds on_hand[n] units."""
        sku = await self.shelf.counter(0)
        async with self.db.sessions() as session, session.begin():
            await session.execute(StockLevel.__table__.delete().where(StockLevel.sku_id == sku.pk))
            session.add_all(StockLevel(sku_id=sku.pk, slot=n, on_hand=units, reserved=0) for n, units in enumerate(on_hand))
        return sku

    async def place(self, sku: StockedSku, quantity: int, buyer: int = 0, ttl: timedelta = HOUR) -> Order | None:
        command = PlaceOrder(
            channel="web", idempotency_key=f"slots-{sku.pk}-{buyer}-{random.getrandbits(48)}",
            lines=[LineRequest(sku.pk, quantity)],
            buyer=Buyer(phone=f"139{buyer:08d}", recharge_account=f"qq:{100000 + buyer}"),
        )
        async with UnitOfWork(self.db, self.broker) as uow:
            placed = await place_order(uow, command, ANONYMOUS, now=datetime.now(UTC), ttl=ttl)
        if placed.order is None:
            assert [r.code for r in placed.refusals] == ["OUT_OF_STOCK"], placed.refusals
        return placed.order

    async def cancel(self, order_id: int) -> None:
        async with UnitOfWork(self.db, self.broker) as uow:
            order = await uow.session.get_one(Order, order_id, with_for_update=True)
            assert (await lifecycle.cancel(uow, order, actor="test", now=datetime.now(UTC))).error_code is None

    async def expire(self, order_id: int) -> None:
        async with UnitOfWork(self.db, self.broker) as uow:
            assert await lifecycle.expire_if_due(uow, order_id, datetime.now(UTC) + 2 * HOUR)

    async def set_stock(self, sku: StockedSku, on_hand: int, slots: int) -> None:
        async with UnitOfWork(self.db, self.broker) as uow:
            await set_on_hand(uow.session, sku.pk, on_hand, slots)

    async def slots(self, sku: StockedSku) -> list[tuple[int, int, int]]:
        """(slot, on hand, reserved) of each slot, in slot order."""
        async with self.db.fresh_sessions() as session:
            found = await session.execute(
                select(StockLevel.slot, StockLevel.on_hand, StockLevel.reserved)
                .where(StockLevel.sku_id == sku.pk).order_by(StockLevel.slot)
            )
            return [(slot, on_hand, reserved) for slot, on_hand, reserved in found]

    async def held(self, sku: StockedSku, order_id: int | None = None) -> dict[int, int]:
        """Units HELD by counter allocations, by slot (of one order, or of all)."""
        async with self.db.fresh_sessions() as session:
            query = (
                select(Allocation.slot, func.sum(Allocation.units))
                .where(Allocation.sku_id == sku.pk, Allocation.source == "COUNTER", Allocation.state == "HELD")
                .group_by(Allocation.slot)
            )
            if order_id is not None:
                query = query.join(OrderLine, OrderLine.id == Allocation.line_id).where(OrderLine.order_id == order_id)
            return {slot: int(units) for slot, units in await session.execute(query)}

    async def assert_consistent(self, sku: StockedSku) -> tuple[int, int]:
        """Every slot holds what its allocations say and never less than that; (on hand, reserved)."""
        slots, held = await self.slots(sku), await self.held(sku)
        assert {slot: reserved for slot, _, reserved in slots if reserved} == held
        assert all(0 <= reserved <= on_hand for _, on_hand, reserved in slots)
        return sum(on_hand for _, on_hand, _ in slots), sum(reserved for _, _, reserved in slots)


@pytest.fixture(scope="module")
async def database(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[Database, Shelf]]:
    async with migrated_database(tmp_path_factory.mktemp("stock-slots")) as url:
        settings = shop_settings(url)
        db = Database.connect(settings)
        try:
            _, shelf = await stock_shop(db, settings)
            yield db, shelf
        finally:
            await db.dispose()


@pytest.fixture(params=["driver", "general"])
def store(database: tuple[Database, Shelf], request: pytest.FixtureRequest) -> Iterator[Store]:
    """The store on one placement path: PostgreSQL's driver path, or the general one."""
    db, shelf = database
    driver = db.driver
    if driver is not None:
        driver.enabled = request.param == "driver"
    try:
        yield Store(db, shelf, MemoryBroker())
    finally:
        if driver is not None:
            driver.enabled = True


async def test_200_buyers_of_50_units_in_uneven_slots_buy_exactly_the_50(store: Store) -> None:
    video = await store.slotted(1, 2, 3, 4, 5, 8, 12, 15)

    placed = await asyncio.gather(*(store.place(video, 1, buyer=n) for n in range(200)))

    assert sum(1 for order in placed if order is not None) == 50
    assert await store.assert_consistent(video) == (50, 50)
    assert all(reserved == on_hand for _, on_hand, reserved in await store.slots(video))


async def test_orders_bigger_than_any_slot_draw_from_several_and_stop_at_the_stock(store: Store) -> None:
    # 25 units, no slot holding 4: every order of 4 takes from several slots.
    video = await store.slotted(3, 3, 3, 3, 3, 3, 3, 4)

    placed = await asyncio.gather(*(store.place(video, 4, buyer=n) for n in range(60)))

    assert sum(1 for order in placed if order is not None) == 6
    assert await store.assert_consistent(video) == (25, 24)


async def test_mixed_quantities_racing_never_take_more_than_the_stock(store: Store) -> None:
    video = await store.slotted(0, 7, 1, 9, 2, 6, 0, 5)  # 30 units, two slots empty
    wants = [1 + n % 5 for n in range(80)]

    placed = await asyncio.gather(*(store.place(video, want, buyer=n) for n, want in enumerate(wants)))

    sold = sum(want for want, order in zip(wants, placed, strict=True) if order is not None)
    on_hand, reserved = await store.assert_consistent(video)
    assert (on_hand, reserved) == (30, sold)
    # Whatever is left is less than every refused order wanted.
    refused = [want for want, order in zip(wants, placed, strict=True) if order is None]
    assert all(want > 30 - sold for want in refused)


async def test_an_order_wanting_more_than_any_slot_holds_takes_it_from_several_in_slot_order(store: Store) -> None:
    video = await store.slotted(2, 2, 2, 2)

    order = await store.place(video, 7)

    assert order is not None
    assert await store.held(video, order.id) == {0: 2, 1: 2, 2: 2, 3: 1}
    assert await store.place(video, 2) is None  # one unit left
    assert await store.place(video, 1) is not None


async def test_a_refused_order_changes_no_slot(store: Store) -> None:
    video = await store.slotted(2, 2, 2, 2)

    assert await store.place(video, 9) is None

    assert await store.slots(video) == [(0, 2, 0), (1, 2, 0), (2, 2, 0), (3, 2, 0)]


async def test_cancellation_and_expiry_give_each_unit_back_to_its_slot(store: Store) -> None:
    video = await store.slotted(3, 3, 3, 3)
    kept, cancelled, lapsed = (await store.place(video, 2, buyer=1), await store.place(video, 5, buyer=2),
                               await store.place(video, 4, buyer=3, ttl=timedelta(minutes=1)))
    assert kept and cancelled and lapsed
    kept_slots = await store.held(video, kept.id)

    await store.cancel(cancelled.id)
    await store.expire(lapsed.id)

    assert await store.held(video) == kept_slots
    assert await store.assert_consistent(video) == (12, 2)
    assert await store.place(video, 10) is not None  # every unit given back is sold again


async def test_the_sale_of_a_delivered_top_up_takes_its_units_from_the_slots_it_held(store: Store) -> None:
    video = await store.slotted(3, 3, 3)
    order = await store.place(video, 5)
    assert order is not None
    async with store.db.sessions() as session, session.begin():
        line_id = await session.scalar(select(OrderLine.id).where(OrderLine.order_id == order.id))
        assert line_id is not None
        await sell_held(await session.connection(), line_id, video.pk)

    assert await store.slots(video) == [(0, 0, 0), (1, 1, 0), (2, 3, 0)]
    assert await store.held(video) == {}


async def test_setting_the_stock_during_a_sale_neither_loses_nor_makes_units(store: Store) -> None:
    video = await store.slotted(*[20] * 8)  # 160
    # Buyers and an operator setting the total again and again, over 8, 3 and 5 slots.
    settings = [(180, 8), (190, 3), (200, 5), (180, 8), (185, 1), (180, 8)]

    async def operator() -> None:
        for on_hand, slots in settings:
            await store.set_stock(video, on_hand, slots)
            await asyncio.sleep(0)

    outcome = await asyncio.gather(operator(), *(store.place(video, 1 + n % 3, buyer=n) for n in range(90)))

    sold = sum(1 + n % 3 for n, order in enumerate(outcome[1:]) if order is not None)
    assert await store.assert_consistent(video) == (180, sold)
    assert sold == sum(1 + n % 3 for n in range(90))  # 180 units: nobody was refused
    slots = await store.slots(video)
    assert [slot for slot, *_ in slots] == list(range(8))
    # What no order holds is spread evenly again.
    free = [on_hand - reserved for _, on_hand, reserved in slots]
    assert sum(free) == 180 - sold and max(free) - min(free) <= 1


async def test_setting_the_stock_keeps_what_orders_hold_in_their_slots(store: Store) -> None:
    video = await store.slotted(5, 5, 5, 5, 5, 5)
    order = await store.place(video, 9)
    assert order is not None and await store.held(video) == {0: 5, 1: 4}

    await store.set_stock(video, 21, 2)  # fewer slots than the order holds units in: kept

    assert await store.slots(video) == [(0, 11, 5), (1, 10, 4)]
    with pytest.raises(CounterRefused) as refused:
        await store.set_stock(video, 8, 8)
    assert refused.value.code == "BELOW_RESERVED"
    assert await store.slots(video) == [(0, 11, 5), (1, 10, 4)]
    await store.cancel(order.id)
    await store.set_stock(video, 3, 4)
    assert await store.slots(video) == [(0, 1, 0), (1, 1, 0), (2, 1, 0), (3, 0, 0)]


async def test_the_skus_figures_are_sums_over_its_slots(store: Store) -> None:
    video = await store.slotted(4, 0, 7, 1)
    assert await store.place(video, 6) is not None

    async with store.db.sessions() as session:
        figures = (await stock_for(session, [video.pk]))[video.pk]

    assert (figures.available, figures.reserved) == (6, 6)
