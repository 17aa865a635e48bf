"""Orders racing each other, cancellations and the expiry sweep: stock moves exactly once."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from broker import MemoryBroker
from domain.access import ANONYMOUS
from domain.orders import LineRequest, OrderStatus
from models import Order, OrderEvent, OrderLine
from services.core.database import Database
from services.core.unit_of_work import UnitOfWork
from services.inventory.reservation import release
from services.orders import lifecycle
from services.orders.expiry import expire_once
from services.orders.placing import Buyer, PlaceOrder, place_order
from tests.e2e.shop import Ledger, Shelf, StockedSku, migrated_database, shop_settings, stock_shop

TOP_UP = Buyer(phone="13800138000", recharge_account="qq:10001")
HOUR = timedelta(hours=1)


@dataclass
class Store:
    db: Database
    shelf: Shelf
    ledger: Ledger
    broker: MemoryBroker

    async def place(self, *lines: tuple[StockedSku, int], key: str, ttl: timedelta = HOUR) -> Order:
        command = PlaceOrder(channel="web", idempotency_key=key, lines=[LineRequest(s.pk, q) for s, q in lines], buyer=TOP_UP)
        async with UnitOfWork(self.db, self.broker) as uow:
            placed = await place_order(uow, command, ANONYMOUS, now=datetime.now(UTC), ttl=ttl)
        assert placed.order is not None, placed.refusals
        return placed.order

    async def cancel(self, order_id: int) -> str | None:
        """As cancelOrder does it: lock the order, then cancel. The error code, or None."""
        async with UnitOfWork(self.db, self.broker) as uow:
            row = await uow.session.get_one(Order, order_id, with_for_update=True)
            outcome = await lifecycle.cancel(uow, row, actor="test", now=datetime.now(UTC))
        return outcome.error_code

    async def expire(self, order_id: int) -> bool:
        async with UnitOfWork(self.db, self.broker) as uow:
            return await lifecycle.expire_if_due(uow, order_id, datetime.now(UTC))

    async def status(self, order_id: int) -> tuple[OrderStatus, list[OrderStatus]]:
        async with self.db.sessions() as session:
            order = await session.get_one(Order, order_id)
            trail = await session.scalars(select(OrderEvent.to_status).where(OrderEvent.order_id == order_id).order_by(OrderEvent.id))
            return order.status, list(trail)


@pytest.fixture(scope="module")
async def store(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Store]:
    async with migrated_database(tmp_path_factory.mktemp("order-concurrency")) as url:
        settings = shop_settings(url)
        db = Database.connect(settings)
        try:
            _, shelf = await stock_shop(db, settings)
            yield Store(db, shelf, Ledger(db), MemoryBroker())
        finally:
            await db.dispose()


async def test_orders_naming_the_same_top_ups_in_opposite_orders_all_go_through(store: Store) -> None:
    video = await store.shelf.counter(100)
    music = await store.shelf.counter(100)

    orders = await asyncio.gather(*(
        store.place(*((video, 1), (music, 1))[:: 1 if n % 2 else -1], key=f"opposite-{n}") for n in range(40)
    ))

    assert len({order.id for order in orders}) == 40
    assert (await store.ledger.counter(video), await store.ledger.counter(music)) == ((100, 40), (100, 40))


async def test_concurrent_buyers_of_the_last_codes_never_share_one(store: Store) -> None:
    coins = await store.shelf.card_codes(10)

    async def attempt(n: int) -> int | None:
        command = PlaceOrder(channel="web", idempotency_key=f"last-codes-{n}", lines=[LineRequest(coins.pk, 2)], buyer=TOP_UP)
        async with UnitOfWork(store.db, store.broker) as uow:
            placed = await place_order(uow, command, ANONYMOUS, now=datetime.now(UTC), ttl=HOUR)
        return placed.order.id if placed.order else None

    placed = [order_id for order_id in await asyncio.gather(*(attempt(n) for n in range(15))) if order_id]

    assert len(placed) == 5
    assert await store.ledger.codes(coins) == {"RESERVED": 10}
    assert await store.ledger.allocations(coins) == Counter({("CODE", "HELD"): 10})


async def test_a_cancel_racing_the_sweep_returns_the_stock_once(store: Store) -> None:
    video = await store.shelf.counter(30)
    coins = await store.shelf.card_codes(15)
    witness = await store.place((video, 5), (coins, 5), key="race-witness")
    due = [await store.place((video, 2), (coins, 1), key=f"race-{n}", ttl=timedelta(0)) for n in range(10)]

    outcomes = await asyncio.gather(*(asyncio.gather(store.cancel(order.id), store.expire(order.id)) for order in due))

    for order, (cancelled, expired) in zip(due, outcomes, strict=True):
        status, trail = await store.status(order.id)
        assert (cancelled is None) != expired, (cancelled, expired)
        assert status is (OrderStatus.CANCELLED if cancelled is None else OrderStatus.EXPIRED)
        assert trail == [OrderStatus.PENDING_RISK, OrderStatus.PENDING_PAYMENT, status]
    assert await store.ledger.counter(video) == (30, 5)
    assert await store.ledger.codes(coins) == {"AVAILABLE": 10, "RESERVED": 5}
    assert (await store.status(witness.id))[0] is OrderStatus.PENDING_PAYMENT


async def test_releasing_lines_twice_gives_their_stock_back_once(store: Store) -> None:
    video = await store.shelf.counter(10)
    first = await store.place((video, 3), key="twice-first")
    await store.place((video, 4), key="twice-second")
    async with store.db.sessions() as session:
        lines = list(await session.scalars(select(OrderLine.id).where(OrderLine.order_id == first.id)))

    returned = []
    for _ in range(2):
        async with store.db.sessions() as session, session.begin():
            returned.append(await release(session, lines))

    assert returned == [[video.pk], []]
    assert await store.ledger.counter(video) == (10, 4)


async def test_the_sweep_expires_due_orders_only(store: Store) -> None:
    coins = await store.shelf.card_codes(4)
    due = await store.place((coins, 1), key="sweep-due", ttl=timedelta(0))
    paid_late = await store.place((coins, 1), key="sweep-paid", ttl=timedelta(0))
    later = await store.place((coins, 1), key="sweep-later")
    async with UnitOfWork(store.db, store.broker) as uow:
        row = await uow.session.get_one(Order, paid_late.id)
        row.status = OrderStatus.PAID  # paid by a payment that settled before its deadline

    while await expire_once(store.db, store.broker):
        pass

    assert [(await store.status(o.id))[0] for o in (due, paid_late, later)] == [
        OrderStatus.EXPIRED, OrderStatus.PAID, OrderStatus.PENDING_PAYMENT,
    ]
    assert await store.ledger.codes(coins) == {"AVAILABLE": 2, "RESERVED": 2}
