"""Sales figures from the database: time buckets, top products, channel performance.

Orders are written directly with the placement times and statuses each figure depends on,
so every expected number below can be counted by hand from the table in `history`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

import pytest

from domain.analytics import AnalyticsInputError, Period, TimeBucket
from domain.catalog import SkuKind
from domain.money import Money
from domain.orders import OrderStatus as S
from domain.risk import Decision
from models import Channel, ChannelKind, Sku
from services.analytics import sales
from services.core.database import Database
from tests.services import catalog_rows as rows
from tests.services.order_rows import order, verdict

T = datetime(2026, 3, 2, tzinfo=UTC)
H = timedelta(hours=1)
BEIJING = timezone(timedelta(hours=8))


@dataclass(frozen=True)
class History:
    channels: dict[str, int]
    tencent: int  # product of SKUs a and c
    iqiyi: int  # product of SKU b
    a: Sku  # 15.00
    b: Sku  # 198.00
    c: Sku  # 30.00


@pytest.fixture(scope="module")
async def history(catalog_db: Database) -> History:
    """
    | # | channel | status     | placed (UTC)    | lines          | total  |
    |---|---------|------------|-----------------|----------------|--------|
    | 1 | web     | PAID       | 03-02 00:10     | a×2            |  30.00 |
    | 2 | web     | DELIVERED  | 03-02 00:50     | b×1            | 198.00 |
    | 3 | web     | CANCELLED  | 03-02 01:05     | a×1            |  15.00 |
    | 4 | taobao  | REFUNDED   | 03-02 01:20     | b×1            | 198.00 |
    | 5 | taobao  | REJECTED   | 03-02 01:30     | a×3            |  45.00 |
    | 6 | taobao  | FULFILLING | 03-02 02:00     | c×1, a×1       |  45.00 |
    | 7 | web     | DELIVERED  | 03-01 23:59:59  | a×1            |  15.00 |
    | 8 | web     | PAID       | 03-03 03:00     | a×1            |  15.00 |
    | 9 | jp      | PAID       | 03-07 01:00     | (JPY) b×1      |        |
    |10 | web     | PAID       | 03-07 02:00     | a×1            |  15.00 |

    Risk verdicts: taobao REJECT at 03-02 01:35 and at 03-03 02:00; web REVIEW at 03-02 00:20.
    """
    async with catalog_db.sessions() as session, session.begin():
        channels = [
            Channel(code=code, name=code, kind=ChannelKind.H5, currency=currency, active=active)
            for code, currency, active in (("web", "CNY", True), ("taobao", "CNY", True), ("jp", "JPY", True), ("closed", "CNY", False))
        ]
        session.add_all(channels)
        brand = await rows.brand(session, rows.unique("brand"))
        category = await rows.category(session, rows.unique("category"))
        tencent = await rows.product(session, brand=brand, category=category, name="腾讯视频")
        iqiyi = await rows.product(session, brand=brand, category=category, name="爱奇艺")
        a = await rows.sku(session, tencent, SkuKind.CARD_CODE, price_fen=1500)
        c = await rows.sku(session, tencent, SkuKind.CARD_CODE, price_fen=3000)
        b = await rows.sku(session, iqiyi, SkuKind.CARD_CODE, price_fen=19800)
        await session.flush()
        ids = {channel.code: channel.id for channel in channels}
    web, taobao, jp = ids["web"], ids["taobao"], ids["jp"]
    await order(catalog_db, web, S.PAID, T + timedelta(minutes=10), (a, 2), paid_at=T + timedelta(minutes=11))
    await order(catalog_db, web, S.DELIVERED, T + timedelta(minutes=50), (b, 1))
    await order(catalog_db, web, S.CANCELLED, T + timedelta(minutes=65), (a, 1))
    await order(catalog_db, taobao, S.REFUNDED, T + timedelta(minutes=80), (b, 1), paid_at=T + timedelta(minutes=81))
    await order(catalog_db, taobao, S.REJECTED, T + timedelta(minutes=90), (a, 3))
    await order(catalog_db, taobao, S.FULFILLING, T + 2 * H, (c, 1), (a, 1), paid_at=T + 2 * H + timedelta(seconds=10))
    await order(catalog_db, web, S.DELIVERED, T - timedelta(seconds=1), (a, 1))
    await order(catalog_db, web, S.PAID, T + 27 * H, (a, 1))
    await order(catalog_db, jp, S.PAID, T + 5 * 24 * H + H, (b, 1), currency="JPY")
    await order(catalog_db, web, S.PAID, T + 5 * 24 * H + 2 * H, (a, 1))
    await verdict(catalog_db, taobao, Decision.REJECT, T + timedelta(minutes=95), "velocity per IP")
    await verdict(catalog_db, taobao, Decision.REJECT, T + 26 * H, "velocity per IP")
    await verdict(catalog_db, web, Decision.REVIEW, T + timedelta(minutes=20), "virtual-operator phone")
    return History(ids, tencent.id, iqiyi.id, a, b, c)


def cny(yuan: str) -> Money:
    return Money.of(yuan, "CNY")


def bucket(start: datetime, orders: int = 0, units: int = 0, paid: int = 0, revenue: str = "0", refunds: str = "0") -> sales.SalesBucket:
    # No order of this history redeemed a coupon: each bucket's discounts are zero in its currency.
    return sales.SalesBucket(start, orders, units, paid, cny(revenue), cny(refunds), cny("0"))


async def _summary(db: Database, start: datetime, end: datetime, size: TimeBucket, channel_id: int | None = None) -> list[sales.SalesBucket]:
    async with db.read_sessions() as session:
        return await sales.sales_summary(session, Period.of(start, end), size, channel_id=channel_id)


async def test_hourly_sales_count_placed_orders_and_paid_revenue(catalog_db: Database, history: History) -> None:
    summary = await _summary(catalog_db, T, T + 4 * H, TimeBucket.HOUR)

    assert summary == [
        bucket(T, orders=2, units=3, paid=2, revenue="228.00"),
        bucket(T + H, orders=3, units=5, refunds="198.00"),
        bucket(T + 2 * H, orders=1, units=2, paid=1, revenue="45.00"),
        bucket(T + 3 * H),
    ]


async def test_a_channel_filter_counts_that_channel_only(catalog_db: Database, history: History) -> None:
    summary = await _summary(catalog_db, T, T + 3 * H, TimeBucket.HOUR, history.channels["taobao"])

    assert summary == [
        bucket(T),
        bucket(T + H, orders=2, units=4, refunds="198.00"),
        bucket(T + 2 * H, orders=1, units=2, paid=1, revenue="45.00"),
    ]


async def test_daily_buckets_follow_the_offset_of_from(catalog_db: Database, history: History) -> None:
    start = datetime(2026, 3, 2, tzinfo=BEIJING)  # 03-01 16:00 UTC: order 7 falls on Beijing's 2 March
    summary = await _summary(catalog_db, start, start + 3 * 24 * H, TimeBucket.DAY)
    utc = await _summary(catalog_db, T, T + 2 * 24 * H, TimeBucket.DAY)

    assert summary == [
        bucket(start, orders=7, units=11, paid=4, revenue="288.00", refunds="198.00"),
        bucket(start + 24 * H, orders=1, units=1, paid=1, revenue="15.00"),
        bucket(start + 48 * H),
    ]
    assert [b.start.isoformat() for b in summary] == [
        "2026-03-02T00:00:00+08:00", "2026-03-03T00:00:00+08:00", "2026-03-04T00:00:00+08:00",
    ]
    assert [(b.orders, b.revenue) for b in utc] == [(6, cny("273.00")), (1, cny("15.00"))]


async def test_a_period_cut_inside_a_bucket_counts_only_its_own_orders(catalog_db: Database, history: History) -> None:
    summary = await _summary(catalog_db, T + timedelta(minutes=30), T + timedelta(minutes=70), TimeBucket.HOUR)

    assert summary == [bucket(T, orders=1, units=1, paid=1, revenue="198.00"), bucket(T + H, orders=1, units=1)]


async def test_sales_in_two_currencies_are_refused_unless_one_channel_is_asked(catalog_db: Database, history: History) -> None:
    day = T + 5 * 24 * H

    with pytest.raises(AnalyticsInputError) as refused:
        await _summary(catalog_db, day, day + 24 * H, TimeBucket.DAY)
    jp = await _summary(catalog_db, day, day + 24 * H, TimeBucket.DAY, history.channels["jp"])

    assert refused.value.field == "channel"
    assert jp == [sales.SalesBucket(day, 1, 1, 1, Money(19800, "JPY"), Money(0, "JPY"), Money(0, "JPY"))]


async def test_an_empty_period_is_in_the_channels_currency(catalog_db: Database, history: History) -> None:
    async with catalog_db.read_sessions() as session:
        summary = await sales.sales_summary(
            session, Period.of(T - 24 * H, T - 23 * H), TimeBucket.HOUR, channel_id=history.channels["jp"], currency="JPY"
        )

    assert summary == [sales.SalesBucket(T - 24 * H, 0, 0, 0, Money(0, "JPY"), Money(0, "JPY"), Money(0, "JPY"))]


async def test_top_products_rank_paid_orders_by_units_or_revenue(catalog_db: Database, history: History) -> None:
    period = Period.of(T, T + 24 * H)
    async with catalog_db.read_sessions() as session:
        by_units = await sales.top_products(session, period)
        by_revenue = await sales.top_products(session, period, by_revenue=True)
        first = await sales.top_products(session, period, limit=1)
        taobao = await sales.top_products(session, period, channel_id=history.channels["taobao"])

    tencent = sales.ProductSales(history.tencent, by_units[0].slug, "腾讯视频", orders=2, units=4, revenue=cny("75.00"))
    iqiyi = sales.ProductSales(history.iqiyi, by_units[1].slug, "爱奇艺", orders=1, units=1, revenue=cny("198.00"))
    assert by_units == [tencent, iqiyi]
    assert by_revenue == [iqiyi, tencent]
    assert first == [tencent]
    assert taobao == [sales.ProductSales(history.tencent, tencent.slug, "腾讯视频", orders=1, units=2, revenue=cny("45.00"))]


async def test_channel_performance_from_placement_to_delivery(catalog_db: Database, history: History) -> None:
    period = Period.of(T, T + 24 * H)
    async with catalog_db.read_sessions() as session:
        every = await sales.channel_performance(session, period)
        web = await sales.channel_performance(session, period, channel_id=history.channels["web"])

    assert every == [
        # No line was posted to the ledger (these orders were written directly): no margin yet.
        sales.ChannelFigures("jp", 0, 0, Money(0, "JPY"), Money(0, "JPY"), delivered=0, risk_rejections=0, margin=Money(0, "JPY")),
        sales.ChannelFigures("taobao", 3, 1, cny("45.00"), cny("198.00"), delivered=0, risk_rejections=1, margin=cny("0")),
        sales.ChannelFigures("web", 3, 2, cny("228.00"), cny("0"), delivered=1, risk_rejections=0, margin=cny("0")),
    ]
    assert [str(f.conversion) for f in every] == ["None", "0.0000", "0.3333"]
    # Rejected attempts per attempt: taobao placed three orders and had one attempt rejected.
    assert [str(f.risk_rejection_rate) for f in every] == ["None", "0.2500", "0.0000"]
    assert web == [every[2]]
