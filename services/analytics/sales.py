"""Sales figures computed by the database: time buckets, top products, channel performance.

Every figure is a GROUP BY over orders placed in a period (by `created_at`); money is
summed as integer fen and turned into Money here, once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, literal_column, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.analytics import (
    HOME_CURRENCY,
    REFUND,
    SALE,
    AnalyticsInputError,
    Period,
    TimeBucket,
    ratio,
)
from domain.ledger import Account, Kind
from domain.money import Money
from domain.orders import OrderStatus
from domain.risk import Decision
from models import Channel, LedgerEntry, Order, OrderLine, Product, RiskVerdict, Sku, Supplier

_SQLITE_FORMATS = {
    TimeBucket.MINUTE: "%Y-%m-%d %H:%M:00",
    TimeBucket.HOUR: "%Y-%m-%d %H:00:00",
    TimeBucket.DAY: "%Y-%m-%d 00:00:00",
}


def bucket_start(dialect: str, column: Any, bucket: TimeBucket, offset_minutes: int) -> ColumnElement[Any]:
    """The wall-clock start of `column`'s bucket at a UTC offset (text on SQLite).

    The constants are written into the SQL, not bound: PostgreSQL groups by an expression
    only if it is the selected one, and two bound parameters are two expressions. Every
    constant comes from the enum or is an int, so nothing a caller typed reaches the SQL.
    """
    shift = int(offset_minutes)
    if dialect == "sqlite":
        # Timestamps are stored as UTC text; the modifier moves them to the offset first.
        return func.strftime(
            literal_column(f"'{_SQLITE_FORMATS[bucket]}'"), column, literal_column(f"'{shift:+d} minutes'")
        )
    if dialect == "postgresql":
        # date_trunc on a timestamptz truncates in the session's time zone: take UTC first.
        utc = func.timezone(literal_column("'UTC'"), column)
        return func.date_trunc(
            literal_column(f"'{bucket.value.lower()}'"), utc + literal_column(f"interval '{shift} minutes'")
        )
    raise NotImplementedError(f"no time buckets for {dialect}")


def _wall_clock(value: str | datetime, zone: timezone) -> datetime:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=zone)


def _in_period(period: Period, channel_id: int | None) -> list[ColumnElement[bool]]:
    where = [Order.created_at >= period.start, Order.created_at < period.end]
    if channel_id is not None:
        where.append(Order.channel_id == channel_id)
    return where


def _count(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _fen(condition: ColumnElement[bool], amount: Any = Order.total_fen) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condition, amount), else_=0)), 0)


_SOLD = Order.status.in_(SALE)
_REFUNDED = Order.status == REFUND


@dataclass(frozen=True, slots=True)
class SalesBucket:
    start: datetime
    orders: int  # placed, whatever became of them
    units: int  # in those orders
    paid_orders: int
    revenue: Money
    refunds: Money
    discounts: Money | None = None  # what coupons took off the paid orders (revenue is net of it)


async def sales_summary(
    session: AsyncSession, period: Period, bucket: TimeBucket, *, channel_id: int | None = None,
    currency: str | None = None,
) -> list[SalesBucket]:
    """Every bucket of the period, empty ones included. Two statements.

    `currency` is the channel's, for empty periods; figures in several currencies are
    refused rather than added up.
    """
    starts = period.buckets(bucket)
    dialect = session.get_bind().dialect.name
    start = bucket_start(dialect, Order.created_at, bucket, period.offset_minutes).label("start")
    where = _in_period(period, channel_id)
    totals: dict[datetime, tuple[int, int, int, int, int]] = {}
    currencies: set[str] = set()
    for key, row_currency, placed, paid, revenue, refunds, discounts in await session.execute(
        select(start, Order.currency, func.count(), _count(_SOLD), _fen(_SOLD), _fen(_REFUNDED),
               _fen(_SOLD, Order.discount_fen))
        .where(*where)
        .group_by(start, Order.currency)
    ):
        currencies.add(row_currency)
        totals[_wall_clock(key, period.zone)] = (int(placed), int(paid), int(revenue), int(refunds), int(discounts))
    if len(currencies) > 1:
        raise AnalyticsInputError(
            "channel", f"orders in {', '.join(sorted(currencies))}: ask for one channel at a time"
        )
    units = {
        _wall_clock(key, period.zone): int(count)
        for key, count in await session.execute(
            select(start, func.sum(OrderLine.quantity))
            .join(Order, Order.id == OrderLine.order_id)
            .where(*where)
            .group_by(start)
        )
    }
    money = currencies.pop() if currencies else currency or HOME_CURRENCY
    summary = []
    for moment in starts:
        placed, paid, revenue, refunds, discounts = totals.get(moment, (0, 0, 0, 0, 0))
        summary.append(SalesBucket(
            moment, placed, units.get(moment, 0), paid, Money(revenue, money), Money(refunds, money),
            Money(discounts, money),
        ))
    return summary


@dataclass(frozen=True, slots=True)
class ProductSales:
    product_id: int
    slug: str
    name: str
    orders: int
    units: int
    revenue: Money


async def top_products(
    session: AsyncSession, period: Period, *, channel_id: int | None = None, limit: int = 10,
    by_revenue: bool = False,
) -> list[ProductSales]:
    """Products by units (or revenue) sold in paid orders; one statement.

    A product sold in two currencies has a row per currency: its sums stay exact.
    """
    units = func.sum(OrderLine.quantity)
    revenue = func.sum(OrderLine.quantity * OrderLine.unit_price_fen)
    ranking = (revenue.desc(), units.desc()) if by_revenue else (units.desc(), revenue.desc())
    query = (
        select(Product.id, Product.slug, Product.name, Order.currency, func.count(func.distinct(Order.id)), units, revenue)
        .select_from(OrderLine)
        .join(Order, Order.id == OrderLine.order_id)
        .join(Sku, Sku.id == OrderLine.sku_id)
        .join(Product, Product.id == Sku.product_id)
        .where(*_in_period(period, channel_id), _SOLD)
        .group_by(Product.id, Product.slug, Product.name, Order.currency)
        .order_by(*ranking, Product.id, Order.currency)
        .limit(limit)
    )
    return [
        ProductSales(pk, slug, name, int(orders), int(sold), Money(int(fen), currency))
        for pk, slug, name, currency, orders, sold, fen in await session.execute(query)
    ]


@dataclass(frozen=True, slots=True)
class ChannelFigures:
    channel: str
    orders: int  # placed
    paid_orders: int
    revenue: Money
    refunds: Money
    delivered: int
    risk_rejections: int  # attempts the risk check rejected (they placed no order)
    margin: Money  # posted in the period by deliveries less refunds

    @property
    def conversion(self) -> Decimal | None:
        """Placed to delivered."""
        return ratio(self.delivered, self.orders)

    @property
    def risk_rejection_rate(self) -> Decimal | None:
        """Rejected attempts per attempt (orders placed plus attempts rejected)."""
        return ratio(self.risk_rejections, self.orders + self.risk_rejections)


async def channel_performance(
    session: AsyncSession, period: Period, *, channel_id: int | None = None
) -> list[ChannelFigures]:
    """One row per channel (active ones even without orders), by code; one statement."""
    placed_in_period = and_(Order.channel_id == Channel.id, *_in_period(period, None))
    rejected = (
        select(func.count(RiskVerdict.id))
        .where(
            RiskVerdict.channel_id == Channel.id, RiskVerdict.decision == Decision.REJECT,
            RiskVerdict.created_at >= period.start, RiskVerdict.created_at < period.end,
        )
        .correlate(Channel)
        .scalar_subquery()
    )
    # The margin is the ledger's, by posting time: a correlated sum per channel row.
    margin = (
        select(func.coalesce(-func.sum(LedgerEntry.amount_fen), 0))
        .where(LedgerEntry.channel_id == Channel.id, LedgerEntry.account == Account.MARGIN,
               LedgerEntry.at >= period.start, LedgerEntry.at < period.end)
        .scalar_subquery()
    )
    query = (
        select(
            Channel.code, Channel.currency, func.count(Order.id), _count(_SOLD), _fen(_SOLD), _fen(_REFUNDED),
            _count(Order.status == OrderStatus.DELIVERED), rejected, margin,
        )
        .select_from(Channel)
        .outerjoin(Order, placed_in_period)
        .group_by(Channel.id, Channel.code, Channel.currency, Channel.active)
        .having(or_(Channel.active.is_(True), func.count(Order.id) > 0, rejected > 0))
        .order_by(Channel.code)
    )
    if channel_id is not None:
        query = query.where(Channel.id == channel_id)
    return [
        ChannelFigures(
            channel=code, orders=int(placed), paid_orders=int(paid),
            revenue=Money(int(revenue), currency), refunds=Money(int(refunds), currency),
            delivered=int(delivered), risk_rejections=int(rejected), margin=Money(int(earned), currency),
        )
        for code, currency, placed, paid, revenue, refunds, delivered, rejected, earned in await session.execute(query)
    ]


@dataclass(frozen=True, slots=True)
class SupplierFigures:
    supplier: str
    lines: int  # order lines delivered
    gross: Money
    cost: Money
    margin: Money
    refunded_cost: Money


async def supplier_performance(session: AsyncSession, period: Period) -> list[SupplierFigures]:
    """One row per supplier with entries posted in the period, by code; one statement, in CNY."""

    def posted(account: Account, kind: Kind, sign: int) -> Any:
        hit = and_(LedgerEntry.account == account, LedgerEntry.kind == kind)
        return func.coalesce(func.sum(case((hit, LedgerEntry.amount_fen * sign), else_=0)), 0)

    delivered = and_(LedgerEntry.account == Account.SUPPLIER, LedgerEntry.kind == Kind.DELIVERY)
    query = (
        select(
            Supplier.code, _count(delivered), posted(Account.CHANNEL, Kind.DELIVERY, 1),
            posted(Account.SUPPLIER, Kind.DELIVERY, -1), func.coalesce(-func.sum(
                case((LedgerEntry.account == Account.MARGIN, LedgerEntry.amount_fen), else_=0)), 0),
            posted(Account.SUPPLIER, Kind.REFUND, 1),
        )
        .select_from(LedgerEntry)
        .join(Supplier, Supplier.id == LedgerEntry.supplier_id)
        .where(LedgerEntry.at >= period.start, LedgerEntry.at < period.end,
               LedgerEntry.kind.in_((Kind.DELIVERY, Kind.REFUND)), LedgerEntry.currency == HOME_CURRENCY)
        .group_by(Supplier.code)
        .order_by(Supplier.code)
    )
    return [
        SupplierFigures(code, int(lines), *(Money(int(v), HOME_CURRENCY) for v in (gross, cost, margin, back)))
        for code, lines, gross, cost, margin, back in await session.execute(query)
    ]
