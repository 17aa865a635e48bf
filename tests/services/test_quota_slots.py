"""A channel's quota spread over slots: buyers racing never sell beyond it, an order draws
from several slots when no one has room enough, a quota lowered below what is used takes
nothing more until releases bring what is used under it (however they race buyers and the
quota being set again), and a release gives each unit back to the slot it came from.

Each case runs on both placement paths: PostgreSQL's driver path (slots_pg.py) and the
general one (on SQLite, the general one twice).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text

from broker import MemoryBroker
from domain.access import ANONYMOUS
from domain.orders import LineRequest
from models import Channel, ChannelQuota, Order, OrderLine, QuotaUse
from services.core.database import Database
from services.core.unit_of_work import UnitOfWork
from services.inventory import quotas
from services.orders import lifecycle
from services.orders.placing import Buyer, PlaceOrder, place_order
from tests.e2e.shop import Shelf, StockedSku, migrated_database, shop_settings, stock_shop

HOUR = timedelta(hours=1)


@dataclass
class Store:
    db: Database
    shelf: Shelf
    broker: MemoryBroker
    web: int

    async def capped(self, quota: int, slots: int, codes: int = 100) -> StockedSku:
        """A code SKU with `codes` codes, the web channel's quota on it spread over `slots`."""
        sku = await self.shelf.card_codes(codes)
        assert await self.set_quota(sku, quota, slots) == quotas.Quota(quota, 0)
        return sku

    async def set_quota(self, sku: StockedSku, quota: int | None, slots: int) -> quotas.Quota | None:
        async with UnitOfWork(self.db, self.broker) as uow:
            return await quotas.set_quota(uow.session, self.web, sku.pk, quota, slots)

    async def place(self, sku: StockedSku, quantity: int, buyer: int = 0, ttl: timedelta = HOUR) -> Order | None:
        command = PlaceOrder(
            channel="web", idempotency_key=f"quota-slots-{sku.pk}-{buyer}-{random.getrandbits(48)}",
            lines=[LineRequest(sku.pk, quantity)], buyer=Buyer(phone=f"139{buyer:08d}"),
        )
        async with UnitOfWork(self.db, self.broker) as uow:
            placed = await place_order(uow, command, ANONYMOUS, now=datetime.now(UTC), ttl=ttl)
        if placed.order is None:
            assert [r.code for r in placed.refusals] == ["QUOTA_EXCEEDED"], placed.refusals
        return placed.order

    async def cancel(self, order_id: int) -> None:
        async with UnitOfWork(self.db, self.broker) as uow:
            order = await uow.session.get_one(Order, order_id, with_for_update=True)
            assert (await lifecycle.cancel(uow, order, actor="test", now=datetime.now(UTC))).error_code is None

    async def expire(self, order_id: int) -> None:
        async with UnitOfWork(self.db, self.broker) as uow:
            assert await lifecycle.expire_if_due(uow, order_id, datetime.now(UTC) + 2 * HOUR)

    async def slots(self, sku: StockedSku) -> list[tuple[int, int, int]]:
        """(slot, quota, used) of each slot, in slot order."""
        async with self.db.fresh_sessions() as session:
            found = await session.execute(
                select(ChannelQuota.slot, ChannelQuota.quota, ChannelQuota.used)
                .where(ChannelQuota.channel_id == self.web, ChannelQuota.sku_id == sku.pk)
                .order_by(ChannelQuota.slot)
            )
            return [(slot, quota, used) for slot, quota, used in found]

    async def uses(self, sku: StockedSku, order_id: int | None = None) -> dict[int, int]:
        """Units of unreleased uses, by the slot they name (of one order, or of all)."""
        async with self.db.fresh_sessions() as session:
            query = (
                select(ChannelQuota.slot, func.sum(QuotaUse.units))
                .join(ChannelQuota, ChannelQuota.id == QuotaUse.quota_id)
                .where(QuotaUse.sku_id == sku.pk, QuotaUse.released_at.is_(None))
                .group_by(ChannelQuota.slot)
            )
            if order_id is not None:
                query = query.join(OrderLine, OrderLine.id == QuotaUse.line_id).where(OrderLine.order_id == order_id)
            return {slot: int(units) for slot, units in await session.execute(query)}

    async def assert_consistent(self, sku: StockedSku) -> tuple[int, int]:
        """Every slot's `used` is what its uses say; (quota, used) summed over the slots."""
        slots = await self.slots(sku)
        assert {slot: used for slot, _, used in slots if used} == await self.uses(sku)
        async with self.db.fresh_sessions() as session:
            reported = (await quotas.quotas_for(session, [(self.web, sku.pk)]))[(self.web, sku.pk)]
        summed = (sum(quota for _, quota, _ in slots), sum(used for _, _, used in slots))
        assert (reported.quota, reported.used) == summed
        return summed


@pytest.fixture(scope="module")
async def database(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[Database, Shelf, int]]:
    async with migrated_database(tmp_path_factory.mktemp("quota-slots")) as url:
        settings = shop_settings(url)
        db = Database.connect(settings)
        try:
            _, shelf = await stock_shop(db, settings)
            async with db.sessions() as session:
                web = await session.scalar(select(Channel.id).where(Channel.code == "web"))
            assert web is not None
            yield db, shelf, web
        finally:
            await db.dispose()


@pytest.fixture(params=["driver", "general"])
def store(database: tuple[Database, Shelf, int], request: pytest.FixtureRequest) -> Iterator[Store]:
    """The store on one placement path: PostgreSQL's driver path, or the general one."""
    db, shelf, web = database
    driver = db.driver
    if driver is not None:
        driver.enabled = request.param == "driver"
    try:
        yield Store(db, shelf, MemoryBroker(), web)
    finally:
        if driver is not None:
            driver.enabled = True


async def test_40_buyers_under_a_quota_of_10_spread_over_8_slots_place_exactly_10(store: Store) -> None:
    coins = await store.capped(10, 8)

    placed = await asyncio.gather(*(store.place(coins, 1, buyer=n) for n in range(40)))

    assert sum(1 for order in placed if order is not None) == 10
    assert await store.assert_consistent(coins) == (10, 10)
    assert all(used == quota for _, quota, used in await store.slots(coins))


async def test_mixed_quantities_racing_never_take_more_than_the_quota(store: Store) -> None:
    coins = await store.capped(30, 8, codes=200)
    wants = [1 + n % 5 for n in range(60)]

    placed = await asyncio.gather(*(store.place(coins, want, buyer=n) for n, want in enumerate(wants)))

    sold = sum(want for want, order in zip(wants, placed, strict=True) if order is not None)
    assert await store.assert_consistent(coins) == (30, sold)
    # Whatever room is left is less than every refused order wanted.
    assert all(want > 30 - sold for want, order in zip(wants, placed, strict=True) if order is None)


async def test_an_order_wanting_more_than_any_slot_has_takes_it_from_several_in_slot_order(store: Store) -> None:
    coins = await store.capped(8, 4)  # 2 in each slot

    order = await store.place(coins, 7)

    assert order is not None
    assert await store.uses(coins, order.id) == {0: 2, 1: 2, 2: 2, 3: 1}
    assert await store.place(coins, 2) is None  # one unit of room left
    assert await store.place(coins, 1) is not None
    assert await store.assert_consistent(coins) == (8, 8)


async def test_a_refused_order_changes_no_slot(store: Store) -> None:
    coins = await store.capped(8, 4)

    assert await store.place(coins, 9) is None

    assert await store.slots(coins) == [(0, 2, 0), (1, 2, 0), (2, 2, 0), (3, 2, 0)]


async def test_a_quota_lowered_below_what_is_used_refuses_orders_until_releases_make_room(store: Store) -> None:
    coins = await store.capped(10, 4)
    orders = [await store.place(coins, 2, buyer=n) for n in range(3)]
    assert all(orders)

    lowered = await store.set_quota(coins, 4, 4)

    assert lowered == quotas.Quota(4, 6) and lowered.remaining == 0
    assert await store.place(coins, 1) is None
    assert await store.assert_consistent(coins) == (4, 6)
    assert all(quota <= used for _, quota, used in await store.slots(coins) if used)
    for order in orders:
        assert order is not None
        await store.cancel(order.id)
    assert await store.place(coins, 4) is not None  # the 4 of the new quota, from several slots
    assert await store.place(coins, 1) is None
    assert await store.assert_consistent(coins) == (4, 4)


async def test_cancellation_and_expiry_give_each_unit_back_to_its_slot(store: Store) -> None:
    coins = await store.capped(4, 4)  # one unit in each slot
    kept, cancelled, lapsed, other = [await store.place(coins, 1, buyer=n, ttl=timedelta(minutes=1)) for n in range(4)]
    assert kept and cancelled and lapsed and other
    assert await store.place(coins, 1) is None
    freed = {**await store.uses(coins, cancelled.id), **await store.uses(coins, lapsed.id)}

    await store.cancel(cancelled.id)
    await store.expire(lapsed.id)

    assert {slot for slot, _, used in await store.slots(coins) if not used} == set(freed)
    assert await store.assert_consistent(coins) == (4, 2)
    again = await store.place(coins, 2)  # every unit given back is sold again
    assert again is not None and await store.uses(coins, again.id) == freed
    assert await store.place(coins, 1) is None


async def test_setting_the_quota_keeps_what_each_slot_has_used_and_spreads_the_rest(store: Store) -> None:
    coins = await store.capped(12, 6)
    order = await store.place(coins, 5)  # 2 + 2 + 1 from slots 0-2
    assert order is not None and await store.uses(coins, order.id) == {0: 2, 1: 2, 2: 1}

    assert await store.set_quota(coins, 9, 2) == quotas.Quota(9, 5)  # slot 2 kept: it has units used

    assert await store.slots(coins) == [(0, 4, 2), (1, 4, 2), (2, 1, 1)]
    await store.cancel(order.id)
    assert await store.set_quota(coins, 3, 4) == quotas.Quota(3, 0)
    assert await store.slots(coins) == [(0, 1, 0), (1, 1, 0), (2, 1, 0), (3, 0, 0)]
    assert await store.set_quota(coins, None, 4) is None
    assert await store.slots(coins) == []
    assert await store.place(coins, 5) is not None  # no cap any more


async def test_setting_the_quota_during_a_rush_never_sells_beyond_it(store: Store) -> None:
    coins = await store.capped(10, 8, codes=200)
    settings = [(15, 8), (20, 3), (25, 5), (30, 8)]

    async def operator() -> None:
        for quota, slots in settings:
            await store.set_quota(coins, quota, slots)
            await asyncio.sleep(0)

    outcome = await asyncio.gather(operator(), *(store.place(coins, 1 + n % 2, buyer=n) for n in range(40)))

    sold = sum(1 + n % 2 for n, order in enumerate(outcome[1:]) if order is not None)
    assert await store.assert_consistent(coins) == (30, sold)
    assert sold <= 30
    assert all(used <= quota for _, quota, used in await store.slots(coins))


async def slot_of(store: Store, sku: StockedSku, order: Order | None) -> int:
    """The one slot a one-unit order took its unit from."""
    assert order is not None
    [slot] = await store.uses(sku, order.id)
    return slot


async def test_releases_under_a_lowered_quota_sell_nothing_until_used_falls_under_it(store: Store) -> None:
    coins = await store.capped(8, 8)
    held = [await store.place(coins, 1, buyer=n) for n in range(8)]  # one unit in each slot
    assert await store.set_quota(coins, 10, 8) == quotas.Quota(10, 8)
    assert await store.set_quota(coins, 4, 8) == quotas.Quota(4, 8)
    assert [quota for _, quota, _ in await store.slots(coins)] == [1, 1, 1, 1, 0, 0, 0, 0]
    by_slot = {await slot_of(store, coins, order): order for order in held}
    sold: list[int] = []
    used: list[int] = []

    for n, order in sorted(by_slot.items()):  # the slots that kept a share first: the worst case
        assert order is not None
        await (store.cancel if n % 2 else store.expire)(order.id)
        placed = 0
        while await store.place(coins, 1, buyer=100 + 10 * n + placed) is not None:
            placed += 1
        sold.append(placed)
        used.append((await store.assert_consistent(coins))[1])

    assert sold == [0, 0, 0, 0, 1, 1, 1, 1]
    assert used == [7, 6, 5, 4, 4, 4, 4, 4]
    assert all(taken <= quota for _, quota, taken in await store.slots(coins))


async def test_a_quota_raised_after_releases_spreads_its_room_as_usual(store: Store) -> None:
    coins = await store.capped(8, 8)
    held = [await store.place(coins, 1, buyer=n) for n in range(8)]
    await store.set_quota(coins, 4, 8)
    for order in held[:6]:
        assert order is not None
        await store.cancel(order.id)
    assert await store.assert_consistent(coins) == (4, 2)

    assert await store.set_quota(coins, 9, 8) == quotas.Quota(9, 2)

    assert all(quota >= used for _, quota, used in await store.slots(coins))
    assert [await store.place(coins, 1, buyer=20 + n) is not None for n in range(8)] == [True] * 7 + [False]
    assert await store.assert_consistent(coins) == (9, 9)


async def held_two_in_each_of_8_slots(store: Store) -> tuple[StockedSku, dict[int, list[Order]]]:
    """A quota of 16 over 8 slots, each slot's 2 units held by two one-unit orders."""
    coins = await store.capped(16, 8, codes=200)
    by_slot: dict[int, list[Order]] = {}
    for n in range(16):
        order = await store.place(coins, 1, buyer=n)
        assert order is not None
        by_slot.setdefault(await slot_of(store, coins, order), []).append(order)
    assert sorted(len(orders) for orders in by_slot.values()) == [2] * 8
    return coins, by_slot


async def settle(store: Store, sku: StockedSku) -> int:
    """Orders placed one after another until one is refused; how many were placed."""
    placed = 0
    while await store.place(sku, 1, buyer=900 + placed) is not None:
        placed += 1
    return placed


async def test_buyers_racing_releases_after_a_lowering_never_end_beyond_the_quota(store: Store) -> None:
    coins, by_slot = await held_two_in_each_of_8_slots(store)
    assert await store.set_quota(coins, 6, 8) == quotas.Quota(6, 16)  # shares 1,1,1,1,1,1,0,0
    # Every order of the slots that kept a share ends; slots 6 and 7 keep their 4 units.
    ending = [order for slot in range(6) for order in by_slot[slot]]
    random.shuffle(ending)

    await asyncio.gather(
        *((store.cancel if n % 2 else store.expire)(order.id) for n, order in enumerate(ending)),
        *(store.place(coins, 1, buyer=100 + n) for n in range(40)),
    )
    await settle(store, coins)

    assert await store.assert_consistent(coins) == (6, 6)
    held = [await store.uses(coins, order.id) for order in by_slot[6] + by_slot[7]]
    assert held == [{6: 1}, {6: 1}, {7: 1}, {7: 1}]  # still where they took their units


async def test_releases_racing_buyers_and_the_quota_being_laid_out_again_never_end_beyond_it(store: Store) -> None:
    coins, by_slot = await held_two_in_each_of_8_slots(store)
    assert await store.set_quota(coins, 6, 8) == quotas.Quota(6, 16)
    ending = [order for slot in range(6) for order in by_slot[slot]]
    random.shuffle(ending)

    async def operator() -> None:  # the same quota over other numbers of slots: rows added and removed
        for slots in (3, 8, 5, 2, 8):
            await store.set_quota(coins, 6, slots)
            await asyncio.sleep(0)

    await asyncio.gather(
        operator(),
        *((store.cancel if n % 2 else store.expire)(order.id) for n, order in enumerate(ending)),
        *(store.place(coins, 1, buyer=100 + n) for n in range(40)),
    )
    await settle(store, coins)

    assert await store.assert_consistent(coins) == (6, 6)


async def test_a_release_that_waited_for_the_quota_laid_out_over_more_slots_lays_out_all_of_them(store: Store) -> None:
    if store.db.engine.dialect.name != "postgresql":
        pytest.skip("only PostgreSQL lets a release wait on the slots while the quota is set")
    coins = await store.capped(12, 3)  # 4 in each slot
    eight = await store.place(coins, 8)  # 4 + 4 from slots 0 and 1
    four = await store.place(coins, 4)  # slot 2
    assert eight is not None and four is not None and await store.uses(coins, four.id) == {2: 4}
    assert await store.set_quota(coins, 8, 3) == quotas.Quota(8, 12)  # shares 3, 3, 2

    async with UnitOfWork(store.db, store.broker) as uow:  # the same quota over 8 slots, not yet committed
        await quotas.set_quota(uow.session, store.web, coins.pk, 8, 8)
        cancelling = asyncio.create_task(store.cancel(eight.id))
        async with asyncio.timeout(10):
            while not await waiting_on_a_lock(store):
                await asyncio.sleep(0.01)
    await cancelling

    # Slot 2 was over its share: the release laid out the 8 slots there are now, not the 3
    # its lock statement began with (the 4 units of room spread from slot 0 on).
    assert await store.slots(coins) == [
        (0, 1, 0), (1, 1, 0), (2, 5, 4), (3, 1, 0), (4, 0, 0), (5, 0, 0), (6, 0, 0), (7, 0, 0),
    ]
    assert await store.assert_consistent(coins) == (8, 4)


async def test_setting_a_quota_that_waited_for_it_being_set_over_more_slots_sets_all_of_them(store: Store) -> None:
    if store.db.engine.dialect.name != "postgresql":
        pytest.skip("only PostgreSQL lets one setting wait on the slots while another is made")
    coins = await store.capped(6, 3)

    async with UnitOfWork(store.db, store.broker) as uow:  # 10 over 8 slots, not yet committed
        await quotas.set_quota(uow.session, store.web, coins.pk, 10, 8)
        setting = asyncio.create_task(store.set_quota(coins, 5, 3))
        async with asyncio.timeout(10):
            while not await waiting_on_a_lock(store):
                await asyncio.sleep(0.01)

    assert await setting == quotas.Quota(5, 0)
    assert await store.slots(coins) == [(0, 2, 0), (1, 2, 0), (2, 1, 0)]


async def waiting_on_a_lock(store: Store) -> bool:
    async with store.db.fresh_sessions() as session:
        waiting = await session.scalar(
            text("SELECT count(*) FROM pg_stat_activity"
                 " WHERE datname = current_database() AND wait_event_type = 'Lock'")
        )
        return bool(waiting)
