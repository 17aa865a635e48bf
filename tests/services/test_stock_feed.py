"""The process's stock feed: one computation per change, shared by every subscriber of a channel."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event

from broker import MemoryBroker
from domain.catalog import CodeStatus, SkuKind, StockFigures
from models import BlindBoxItem, Channel, ChannelKind, Product, Sku
from services.core.database import Database
from services.core.events import STOCK_CHANGED, stock_message
from services.inventory import quotas
from services.live.stock_feed import ChannelStock, StockFeed
from tests.services import catalog_rows as rows

WHEN = datetime(2026, 11, 11, 0, 0, 5, tzinfo=UTC)


@dataclass(frozen=True)
class Shop:
    web: Channel
    taobao: Channel
    product: Product


@pytest.fixture(scope="module")
async def shop(catalog_db: Database) -> Shop:
    async with catalog_db.sessions() as session, session.begin():
        web = Channel(code=rows.unique("web"), name="官网", kind=ChannelKind.OWN_SITE, public=True)
        taobao = Channel(code=rows.unique("taobao"), name="淘宝", kind=ChannelKind.MARKETPLACE)
        session.add_all([web, taobao])
        brand = await rows.brand(session, rows.unique("brand"))
        category = await rows.category(session, rows.unique("category"))
        product = await rows.product(session, brand=brand, category=category, name="直播间权益")
    return Shop(web, taobao, product)


async def _codes(db: Database, shop: Shop, count: int) -> Sku:
    async with db.sessions() as session, session.begin():
        sku = await rows.sku(session, shop.product, SkuKind.CARD_CODE)
        rows.codes(session, sku, CodeStatus.AVAILABLE, count)
    return sku


async def _quota(db: Database, channel: Channel, sku: Sku, quota: int | None) -> None:
    async with db.sessions() as session, session.begin():
        await quotas.set_quota(session, channel.id, sku.id, quota)


@contextlib.asynccontextmanager
async def _feed(db: Database, *, inbox_size: int = 64) -> AsyncIterator[tuple[StockFeed[ChannelStock], MemoryBroker]]:
    broker = MemoryBroker()
    feed: StockFeed[ChannelStock] = StockFeed(db, broker, lambda stock: stock, inbox_size=inbox_size)
    try:
        yield feed, broker
    finally:
        await feed.close()


async def _changed(broker: MemoryBroker, *skus: Sku) -> None:
    await broker.publish(STOCK_CHANGED, stock_message([s.id for s in skus], WHEN))


async def _next(updates: AsyncIterator[ChannelStock]) -> ChannelStock:
    return await asyncio.wait_for(anext(updates), timeout=5)


async def _nothing(updates: AsyncIterator[ChannelStock]) -> None:
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(anext(updates), timeout=0.2)


async def _drain(updates: AsyncIterator[ChannelStock]) -> None:
    while True:
        try:
            await asyncio.wait_for(anext(updates), timeout=0.2)
        except TimeoutError:
            return


async def _live(broker: MemoryBroker, updates: AsyncIterator[ChannelStock], sku: Sku) -> None:
    """Wait for the feed's subscription: change `sku` until its first update arrives."""
    for _ in range(50):
        await _changed(broker, sku)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(anext(updates), timeout=0.1)
            break
    else:
        raise AssertionError("the feed never went live")
    # On a busy machine the first update can take longer than a try: updates for the
    # changes published after it are still coming. Take them, so tests start from quiet.
    with contextlib.suppress(TimeoutError):
        while True:
            await asyncio.wait_for(anext(updates), timeout=0.5)


async def _next_other_than(updates: AsyncIterator[ChannelStock], available: int) -> int:
    """The next figure that differs from `available`: on a busy machine `_live` may have
    published once more before the first update arrived, and that repeat is still queued."""
    while (figure := (await _next(updates)).figures.available) == available:
        pass
    return figure


@contextlib.contextmanager
def _statements(db: Database) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    engines = {db.engine.sync_engine, db.read_engine.sync_engine}
    for engine in engines:
        event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", count)


async def test_every_subscriber_of_a_channel_receives_the_same_update_from_one_computation(
    catalog_db: Database, shop: Shop
) -> None:
    coins = await _codes(catalog_db, shop, 30)
    await _quota(catalog_db, shop.taobao, coins, 12)

    async with _feed(catalog_db) as (feed, broker), contextlib.AsyncExitStack() as stack:
        first = await stack.enter_async_context(feed.follow(shop.web.id, shop.web.code, {coins.id}))
        await _live(broker, first, coins)
        with _statements(catalog_db) as alone:
            await _changed(broker, coins)
            await _next(first)

        web = [first] + [
            await stack.enter_async_context(feed.follow(shop.web.id, shop.web.code, {coins.id})) for _ in range(199)
        ]
        taobao = await stack.enter_async_context(feed.follow(shop.taobao.id, shop.taobao.code))
        with _statements(catalog_db) as crowded:
            await _changed(broker, coins)
            received = [await _next(updates) for updates in web]
            partner = await _next(taobao)

    assert received[0] == ChannelStock(shop.web.code, coins.id, StockFigures(available=30, reserved=0), WHEN)
    assert all(update is received[0] for update in received)
    assert partner == ChannelStock(shop.taobao.code, coins.id, StockFigures(available=12, reserved=0), WHEN)
    # Two channels and 201 subscribers read the same statements as one subscriber did.
    assert len(crowded) == len(alone), crowded


async def test_a_subscriber_receives_only_the_skus_it_follows_and_bundles_move_with_their_parts(
    catalog_db: Database, shop: Shop
) -> None:
    coins = await _codes(catalog_db, shop, 5)
    video = await _codes(catalog_db, shop, 2)
    async with catalog_db.sessions() as session, session.begin():
        pack = await rows.sku(session, shop.product, SkuKind.BUNDLE)
        rows.bundle_items(session, pack, (coins, 1), (video, 1))

    async with (
        _feed(catalog_db) as (feed, broker),
        feed.follow(shop.web.id, shop.web.code, {video.id}) as video_only,
        feed.follow(shop.web.id, shop.web.code, {pack.id}) as pack_only,
        feed.follow(shop.web.id, shop.web.code) as everything,
    ):
        await _live(broker, everything, coins)
        await _nothing(video_only)
        # The warm-up changes of the coins moved the pack too.
        await _drain(everything)
        await _drain(pack_only)

        await _changed(broker, coins)

        assert [await _next(everything), await _next(everything)] == [
            ChannelStock(shop.web.code, coins.id, StockFigures(available=5, reserved=0), WHEN),
            ChannelStock(shop.web.code, pack.id, StockFigures(available=2, reserved=0), WHEN),
        ]
        assert await _next(pack_only) == ChannelStock(shop.web.code, pack.id, StockFigures(available=2, reserved=0), WHEN)
        await _nothing(video_only)


async def test_a_blind_box_moves_with_the_items_it_draws_from(catalog_db: Database, shop: Shop) -> None:
    small, large = await _codes(catalog_db, shop, 3), await _codes(catalog_db, shop, 4)
    async with catalog_db.sessions() as session, session.begin():
        box = await rows.sku(session, shop.product, SkuKind.BLIND_BOX)
        session.add_all([BlindBoxItem(box_sku_id=box.id, item_sku_id=small.id, weight=3, position=0),
                         BlindBoxItem(box_sku_id=box.id, item_sku_id=large.id, weight=1, position=1)])

    async with (
        _feed(catalog_db) as (feed, broker),
        feed.follow(shop.web.id, shop.web.code, {box.id}) as box_only,
        feed.follow(shop.web.id, shop.web.code, {large.id}) as large_only,
    ):
        await _live(broker, large_only, large)
        await _drain(box_only)

        # Codes of one item arrive (its stock event names the item only): the box has them too.
        async with catalog_db.sessions() as session, session.begin():
            rows.codes(session, await session.get_one(Sku, small.id), CodeStatus.AVAILABLE, 2)
        await _changed(broker, small)

        assert await _next(box_only) == ChannelStock(shop.web.code, box.id, StockFigures(available=9, reserved=0), WHEN)
        await _nothing(large_only)


async def test_a_subscriber_too_slow_to_keep_up_loses_its_oldest_updates(catalog_db: Database, shop: Shop) -> None:
    coins = await _codes(catalog_db, shop, 10)

    async with (
        _feed(catalog_db, inbox_size=2) as (feed, broker),
        feed.follow(shop.web.id, shop.web.code, {coins.id}) as keeping_up,
        feed.follow(shop.web.id, shop.web.code, {coins.id}) as stalled,
    ):
        await _live(broker, keeping_up, coins)
        await _next(stalled)
        for before, quota in ((10, 9), (9, 8), (8, 7)):
            await _quota(catalog_db, shop.web, coins, quota)
            await _changed(broker, coins)
            assert await _next_other_than(keeping_up, before) == quota

        assert [(await _next(stalled)).figures.available for _ in range(2)] == [8, 7]
        await _nothing(stalled)
    await _quota(catalog_db, shop.web, coins, None)


async def test_a_burst_of_changes_is_read_once_with_the_figures_after_all_of_it(catalog_db: Database, shop: Shop) -> None:
    coins = await _codes(catalog_db, shop, 10)

    async with _feed(catalog_db) as (feed, broker), feed.follow(shop.web.id, shop.web.code) as updates:
        await _live(broker, updates, coins)
        await _quota(catalog_db, shop.web, coins, 4)
        later = datetime(2026, 11, 11, 0, 0, 6, tzinfo=UTC)
        await broker.publish(STOCK_CHANGED, stock_message([coins.id], WHEN))
        await broker.publish(STOCK_CHANGED, stock_message([coins.id], later))

        assert await _next(updates) == ChannelStock(shop.web.code, coins.id, StockFigures(available=4, reserved=0), later)
        await _nothing(updates)
    await _quota(catalog_db, shop.web, coins, None)


async def test_a_subscriber_that_left_is_forgotten(catalog_db: Database, shop: Shop) -> None:
    coins = await _codes(catalog_db, shop, 1)

    async with _feed(catalog_db) as (feed, broker):
        async with feed.follow(shop.web.id, shop.web.code) as updates:
            await _live(broker, updates, coins)
            assert feed.followers() == 1
        assert feed.followers() == 0
        with _statements(catalog_db) as read:
            await _changed(broker, coins)
            await asyncio.sleep(0.1)

    assert read == []  # nobody follows: the change is not even read
