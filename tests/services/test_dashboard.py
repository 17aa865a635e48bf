"""The operators' dashboard: a snapshot of the last minute and hour, and the feed that shares it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from broker.memory import MemoryBroker
from domain.catalog import CodeStatus, SkuKind
from domain.money import Money
from domain.orders import OrderStatus as S
from domain.risk import Decision
from models import Channel, ChannelKind, Supplier, SupplierAttempt, TopUpTask
from services.analytics.dashboard import (
    Alert,
    FailingSupplier,
    Figures,
    LowStock,
    SkuSales,
    Snapshot,
    snapshot,
)
from services.analytics.dashboard_feed import DashboardFeed
from services.core.database import Database
from services.core.events import STOCK_CHANGED, stock_message
from services.orders.events import ORDERS_TOPIC
from tests.services import catalog_rows as rows
from tests.services.order_rows import order, verdict

NOW = datetime.now(UTC).replace(microsecond=0)
SECOND = timedelta(seconds=1)
M = timedelta(minutes=1)


def cny(yuan: str) -> Money:
    return Money.of(yuan, "CNY")


async def test_the_snapshot_counts_the_last_minute_and_hour(catalog_db: Database) -> None:
    async with catalog_db.sessions() as session, session.begin():
        web = Channel(code="web", name="web", kind=ChannelKind.H5)
        session.add(web)
        brand = await rows.brand(session, rows.unique("brand"))
        category = await rows.category(session, rows.unique("category"))
        product = await rows.product(session, brand=brand, category=category, name="腾讯视频")
        withdrawn = await rows.product(session, brand=brand, category=category, name="下架", active=False)
        a = await rows.sku(session, product, SkuKind.CARD_CODE, price_fen=1500)
        b = await rows.sku(session, product, SkuKind.CARD_CODE, price_fen=19800)
        c = await rows.sku(session, product, SkuKind.CARD_CODE, price_fen=3000)
        await rows.sku(session, withdrawn, SkuKind.CARD_CODE)  # not on sale: never "low"
        rows.codes(session, a, CodeStatus.AVAILABLE, 3)
        rows.codes(session, b, CodeStatus.AVAILABLE, 11)
        rows.codes(session, c, CodeStatus.AVAILABLE, 10)
        await session.flush()
        channel = web.id
    await order(catalog_db, channel, S.PAID, NOW - 30 * SECOND, (a, 2), paid_at=NOW - 20 * SECOND)
    await order(catalog_db, channel, S.REJECTED, NOW - 10 * M, (b, 5))
    await order(catalog_db, channel, S.PENDING_PAYMENT, NOW - 20 * M, (c, 3))
    await order(catalog_db, channel, S.REFUNDED, NOW - 50 * M, (b, 9), paid_at=NOW - 49 * M)
    await order(catalog_db, channel, S.PAID, NOW - 2 * 60 * M, (b, 1), paid_at=NOW - 2 * 60 * M)
    await verdict(catalog_db, channel, Decision.REJECT, NOW - 5 * M, "velocity per IP")
    await verdict(catalog_db, channel, Decision.REJECT, NOW - 15 * M, "blacklisted device", "velocity per IP")
    await verdict(catalog_db, channel, Decision.REVIEW, NOW - 25 * M, "virtual-operator phone")
    await verdict(catalog_db, channel, Decision.PASS, NOW - 25 * M)
    await verdict(catalog_db, channel, Decision.REJECT, NOW - 2 * 60 * M, "velocity per IP")  # over an hour ago
    # Held for review for three hours: still in the queue, whatever the last hour saw.
    await order(catalog_db, channel, S.REVIEW, NOW - 3 * 60 * M, (b, 1))
    await order(catalog_db, channel, S.REVIEW, NOW - 90 * M, (b, 1))
    flaky, steady, unconfigured = await exchanges(catalog_db, channel, b)

    async with catalog_db.read_sessions() as session:
        shot = await snapshot(session, NOW)

    assert shot == Snapshot(
        at=NOW,
        figures=Figures(
            orders_last_minute=1,
            orders_last_hour=4,
            revenue_last_minute=cny("30.00"),
            revenue_last_hour=cny("30.00"),  # the refunded order is not revenue
            # Open and paid orders; the rejected and refunded ones asked for nothing that stands.
            # Sold (paid in the hour) and its revenue on one basis, ordered (placed in the hour) beside it;
            # the rejected and refunded orders asked for nothing that stands.
            top_skus=(SkuSales(a.id, a.code, a.name, 2, cny("30.00"), 2), SkuSales(c.id, c.code, c.name, 0, cny("0"), 3)),
            low_stock=(LowStock(a.id, a.code, a.name, 3, True), LowStock(c.id, c.code, c.name, 10, True)),
            # Attempts the risk check rejected (no order), not orders in REJECTED.
            risk_interceptions=2,
            risk_reviews=1,
            top_risk_rules=(("velocity per IP", 2), ("blacklisted device", 1), ("virtual-operator phone", 1)),
            review_queue=2,
            oldest_review_at=NOW - 3 * 60 * M,
            failing_suppliers=(FailingSupplier(flaky.code, "时好时坏", 2, 1, 0),
                               FailingSupplier(unconfigured.code, "未配置", 1, 0, 1)),
        ),
    )
    assert shot.figures.alerts == (
        Alert("SUPPLIER_FAILING", "CRITICAL", flaky.code, "时好时坏", 2),
        Alert("SUPPLIER_FAILING", "CRITICAL", unconfigured.code, "未配置", 1),
        Alert("LOW_STOCK", "WARNING", a.code, a.name, 3),
        Alert("LOW_STOCK", "WARNING", c.code, c.name, 10),
        Alert("REVIEW_QUEUE", "WARNING", None, None, 2, NOW - 3 * 60 * M),
    )
    assert steady.code not in {row.code for row in shot.figures.failing_suppliers}


async def exchanges(db: Database, channel: int, sku: object) -> tuple[Supplier, Supplier, Supplier]:
    """Three suppliers' exchanges over the last 15 minutes (and one failure before them):
    one failing more often than not, one mostly well, one with no connection to use."""
    (line,) = await order(db, channel, S.FAILED, NOW - 2 * 60 * M, (sku, 1), paid_at=NOW - 2 * 60 * M)  # type: ignore[arg-type]
    async with db.sessions() as session, session.begin():
        flaky, steady, unconfigured = (
            await rows.supplier(session, "时好时坏"), await rows.supplier(session, "稳定"), await rows.supplier(session, "未配置")
        )
        task = TopUpTask(line_id=line, sku_id=sku.id, units=1, request_id=rows.unique("req"), status="FAILED")  # type: ignore[attr-defined]
        session.add(task)
        await session.flush()
        for supplier, action, outcome, ago in [
            (flaky, "SUBMIT", "FAILED", 5 * M), (flaky, "QUERY", "UNKNOWN", 4 * M), (flaky, "SUBMIT", "SUCCEEDED", 3 * M),
            (steady, "SUBMIT", "FAILED", 5 * M), (steady, "SUBMIT", "SUCCEEDED", 4 * M), (steady, "SUBMIT", "SUCCEEDED", 3 * M),
            (steady, "SUBMIT", "FAILED", 20 * M), (steady, "SUBMIT", "FAILED", 25 * M),  # before the window
            (unconfigured, "SKIP", "FAILED", 2 * M),
        ]:
            session.add(SupplierAttempt(task_id=task.id, supplier_id=supplier.id, request_id=task.request_id,
                                        action=action, outcome=outcome, at=NOW - ago))
    return flaky, steady, unconfigured


def test_paid_top_ups_no_supplier_can_take_come_before_every_other_alert() -> None:
    zero = Money(0, "CNY")
    since = NOW - 5 * M
    figures = Figures(0, 0, zero, zero, (), (LowStock(1, "QB-10", "Q币 10 元", 0, True),), 0,
                      review_queue=1, oldest_review_at=since, topups_waiting=2, topups_waiting_since=since)

    assert [(a.kind, a.severity, a.count) for a in figures.alerts] == [
        ("TOPUP_WAITING", "CRITICAL", 2), ("OUT_OF_STOCK", "CRITICAL", 0), ("REVIEW_QUEUE", "WARNING", 1)]
    assert figures.alerts[0].since == since


# ---- the feed, over a stand-in for the database ------------------------------------------


@dataclass
class Counter:
    """A stand-in for the snapshot query: figures are its `orders`, and it counts its calls."""

    orders: int = 0
    computed: int = 0
    failures: int = 0
    started: list[float] = field(default_factory=list)

    async def compute(self) -> Snapshot:
        self.computed += 1
        self.started.append(asyncio.get_running_loop().time())
        if self.failures:
            self.failures -= 1
            raise RuntimeError("database unavailable")
        zero = Money(0, "CNY")
        return Snapshot(datetime.now(UTC), Figures(self.orders, self.orders, zero, zero, (), (), 0))


def orders_of(shot: Snapshot) -> int:
    return shot.figures.orders_last_minute


@pytest.fixture
async def broker() -> AsyncIterator[MemoryBroker]:
    yield MemoryBroker()


def feed_of(counter: Counter, broker: MemoryBroker, *, interval: float = 0.2, refresh: float = 60) -> DashboardFeed[Snapshot]:
    return DashboardFeed(counter.compute, broker, lambda shot: shot, interval=interval, refresh=refresh)


async def next_of(snapshots: AsyncIterator[Snapshot], timeout: float = 2) -> Snapshot:
    return await asyncio.wait_for(anext(snapshots), timeout)


async def nothing_within(snapshots: AsyncIterator[Snapshot], seconds: float) -> bool:
    try:
        await asyncio.wait_for(anext(snapshots), seconds)
    except TimeoutError:
        return True
    return False


async def test_the_feed_runs_only_while_someone_watches(broker: MemoryBroker) -> None:
    counter = Counter(orders=7)
    feed = feed_of(counter, broker)
    assert not feed.running

    async with feed.subscribe() as snapshots:
        first = await next_of(snapshots)
        assert feed.running and feed.subscribers == 1
    await broker.publish(ORDERS_TOPIC, b"{}")
    await asyncio.sleep(0.3)

    assert orders_of(first) == 7
    assert not feed.running and feed.subscribers == 0
    assert counter.computed == 1  # nobody watches: events no longer cost a query


async def test_every_subscriber_gets_the_same_snapshot_computed_once(broker: MemoryBroker) -> None:
    counter = Counter()
    feed = feed_of(counter, broker)
    async with feed.subscribe() as first, feed.subscribe() as second:
        a, b = await next_of(first), await next_of(second)
        counter.orders = 1
        await broker.publish(ORDERS_TOPIC, b"{}")
        c, d = await next_of(first), await next_of(second)
        async with feed.subscribe() as late:
            e = await next_of(late, timeout=0.05)  # at once: the latest, not a new query

    assert a is b and c is d and e is c
    assert [orders_of(a), orders_of(c)] == [0, 1]
    assert counter.computed == 2


async def test_a_burst_of_events_is_folded_into_one_snapshot_per_interval(broker: MemoryBroker) -> None:
    counter = Counter()
    feed = feed_of(counter, broker, interval=0.2)
    loop = asyncio.get_running_loop()
    pushed: list[float] = []
    async with feed.subscribe() as snapshots:
        await next_of(snapshots)
        pushed.append(loop.time())

        async def burst() -> None:
            for _ in range(40):
                counter.orders += 1
                await broker.publish(ORDERS_TOPIC if counter.orders % 2 else STOCK_CHANGED, stock_message([1]))
                await asyncio.sleep(0.025)  # one second in all

        source = asyncio.create_task(burst())
        while (shot := await next_of(snapshots)).figures.orders_last_minute < 40:
            pushed.append(loop.time())
        pushed.append(loop.time())
        await source

    # Timed where the feed queries, not where the subscriber happens to be scheduled.
    gaps = [later - earlier for earlier, later in zip(counter.started, counter.started[1:])]
    assert min(gaps) >= 0.199
    assert len(pushed) <= 1 + 1.0 / 0.2 + 2
    assert counter.computed <= 1 + 1.0 / 0.2 + 2  # the first, one per interval, the tail
    assert orders_of(shot) == 40


async def test_unchanged_figures_are_not_pushed_again(broker: MemoryBroker) -> None:
    counter = Counter(orders=3)
    feed = feed_of(counter, broker, interval=0.05)
    async with feed.subscribe() as snapshots:
        await next_of(snapshots)
        await broker.publish(STOCK_CHANGED, stock_message([1]))

        assert await nothing_within(snapshots, 0.3)
    assert counter.computed == 2


async def test_the_last_minute_moves_on_without_events(broker: MemoryBroker) -> None:
    counter = Counter(orders=2)
    feed = feed_of(counter, broker, interval=0.05, refresh=0.1)
    async with feed.subscribe() as snapshots:
        await next_of(snapshots)
        counter.orders = 0  # the orders left the window; nobody published anything

        assert orders_of(await next_of(snapshots)) == 0


async def test_the_feed_recovers_from_a_failed_snapshot(broker: MemoryBroker) -> None:
    counter = Counter(orders=5, failures=1)
    feed = feed_of(counter, broker, interval=0.05)
    async with feed.subscribe() as snapshots:
        assert orders_of(await next_of(snapshots)) == 5
    assert counter.computed == 2
