"""The terms orders are placed on, kept per process (services/orders/terms.py): a SKU no order
has read yet is read once for all the orders that arrive while it is being read."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from models import Channel, Listing, Sku
from services.core.database import Database
from services.orders.terms import SkuTerms, Terms
from tests.support import StatementCounter

NOW = datetime(2026, 6, 18, 0, 0, tzinfo=UTC)
UNKNOWN_SKU = 987_654_321


async def _web_skus(db: Database) -> tuple[int, list[int]]:
    async with db.sessions() as session:
        channel = (await session.execute(select(Channel.id).where(Channel.code == "web"))).scalar_one()
        skus = (await session.execute(
            select(Sku.id).join(Listing, Listing.product_id == Sku.product_id)
            .where(Listing.channel_id == channel).order_by(Sku.id).limit(2)
        )).scalars().all()
    return channel, list(skus)


async def _orders_at_once(
    db: Database, terms: Terms, channel: int, sku_ids: list[int], orders: int,
) -> tuple[list[dict[int, SkuTerms]], int]:
    """What `orders` orders naming `sku_ids` at once are told, and the statements it took."""
    counter = StatementCounter()
    counter.attach(db.engine)

    async def order() -> dict[int, SkuTerms]:
        async with db.sessions() as session:
            return await terms.skus(session, channel, sku_ids, NOW)

    async def together() -> list[dict[int, SkuTerms]]:
        # Started inside the measurement: the orders' tasks inherit its context.
        return list(await asyncio.gather(*(order() for _ in range(orders))))

    answers, statements = await counter.measure(together())
    return answers, statements


async def test_a_cold_sku_is_read_once_for_the_orders_that_arrive_together(db: Database) -> None:
    channel, skus = await _web_skus(db)
    _, alone = await _orders_at_once(db, Terms(), channel, skus[:1], 1)

    answers, statements = await _orders_at_once(db, Terms(), channel, skus[:1], 30)

    assert alone > 0
    assert statements == alone  # one read, not thirty
    assert all(list(answer) == skus[:1] and answer[skus[0]].sku.id == skus[0] for answer in answers)


async def test_an_unknown_sku_named_by_many_at_once_is_read_once_and_stays_unknown(db: Database) -> None:
    channel, skus = await _web_skus(db)
    terms = Terms()
    _, alone = await _orders_at_once(db, Terms(), channel, [UNKNOWN_SKU], 1)

    answers, statements = await _orders_at_once(db, terms, channel, [UNKNOWN_SKU], 20)

    assert alone > 0 and statements == alone
    assert answers == [{}] * 20
    # Not kept: the next order reads again (a flood of made-up ids costs reads, not memory).
    _, later = await _orders_at_once(db, terms, channel, [UNKNOWN_SKU], 1)
    assert later == alone


async def test_an_order_naming_a_sku_not_in_flight_reads_it_and_gets_every_sku(db: Database) -> None:
    channel, skus = await _web_skus(db)
    terms = Terms()

    async def order(ids: list[int]) -> dict[int, SkuTerms]:
        async with db.sessions() as session:
            return await terms.skus(session, channel, ids, NOW)

    first, both = await asyncio.gather(order(skus[:1]), order(skus))

    assert list(first) == skus[:1]
    assert sorted(both) == skus


async def test_when_the_first_read_fails_the_orders_waiting_on_it_read_for_themselves(
    db: Database, monkeypatch: pytest.MonkeyPatch,
) -> None:
    channel, skus = await _web_skus(db)
    terms = Terms()
    started = asyncio.Event()
    real = terms._read_skus
    calls = 0

    async def failing_once(*args: Any) -> dict[int, SkuTerms]:
        nonlocal calls
        calls += 1
        if calls == 1:
            started.set()
            await asyncio.sleep(0.05)  # the others arrive meanwhile
            raise ConnectionError("the database went away mid-read")
        return await real(*args)

    monkeypatch.setattr(terms, "_read_skus", failing_once)

    async def order() -> dict[int, SkuTerms]:
        async with db.sessions() as session:
            return await terms.skus(session, channel, skus[:1], NOW)

    first = asyncio.create_task(order())
    await started.wait()
    waiting = [asyncio.create_task(order()) for _ in range(5)]
    with pytest.raises(ConnectionError):
        await first
    answers = await asyncio.wait_for(asyncio.gather(*waiting), 10)  # a waiter left hanging fails here

    assert all(answer[skus[0]].sku.id == skus[0] for answer in answers)
    assert calls >= 2  # the waiters read again themselves; nothing hangs


async def test_a_change_while_a_first_read_is_in_flight_is_not_answered_by_that_read(db: Database) -> None:
    channel, skus = await _web_skus(db)
    terms = Terms()
    counter = StatementCounter()
    counter.attach(db.engine)

    async def order() -> dict[int, SkuTerms]:
        async with db.sessions() as session:
            return await terms.skus(session, channel, skus[:1], NOW)

    async def read_then_change_then_read() -> list[dict[int, SkuTerms]]:
        before = asyncio.create_task(order())
        await asyncio.sleep(0)  # the first read is in flight
        terms.forget()  # a catalog change commits
        after = asyncio.create_task(order())
        return list(await asyncio.gather(before, after))

    _, alone = await _orders_at_once(db, Terms(), channel, skus[:1], 1)
    _, statements = await counter.measure(read_then_change_then_read())

    assert alone > 0 and statements == 2 * alone  # the order after the change read for itself
