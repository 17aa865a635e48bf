"""The operators' live dashboard: one snapshot of the shop, computed by a handful of statements.

Each figure has one basis, said beside it: orders by the time they were placed, revenue
and units sold by the time they were paid, the review queue as it stands now. What an
operator must act on (stock running out where it sells, a supplier failing, orders waiting
for review) comes out as alerts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.analytics import DEMAND, HOME_CURRENCY, SALE
from domain.ledger import Account
from domain.money import Money
from domain.orders import OrderStatus
from models import LedgerEntry, Order, OrderLine, Sku, Supplier, SupplierAttempt
from services.analytics.gauges import low_stock as low_stock_skus
from services.fulfilment.connections import waiting_topups
from services.risk.reads import summary as risk_summary
from services.settlement.reconciliation import open_discrepancies

TOP_SKUS = 5
LOW_STOCK_LISTED = 10
# A supplier is failing when, over this window, more of its exchanges failed than succeeded.
SUPPLIER_WINDOW = timedelta(minutes=15)
# Exchanges that failed: a refusal, an answer nobody can trust, or no connection to make one.
FAILED_EXCHANGES = ("FAILED", "UNKNOWN")
UNREACHABLE = "SKIP"  # services/fulfilment/topups.py: passed over for want of connection settings


@dataclass(frozen=True, slots=True)
class SkuSales:
    """A SKU's units sold in the last hour (in orders paid in it) and their revenue, beside the
    units ordered in the last hour (in orders placed in it, open or paid): revenue and the
    units it was paid for share one basis."""

    sku_id: int
    code: str
    name: str
    units_sold: int
    revenue: Money
    units_ordered: int


@dataclass(frozen=True, slots=True)
class LowStock:
    sku_id: int
    code: str
    name: str
    available: int
    selling: bool = False  # ordered in the last hour


@dataclass(frozen=True, slots=True)
class FailingSupplier:
    """A supplier more of whose exchanges failed than succeeded over SUPPLIER_WINDOW."""

    code: str
    name: str
    failed: int
    succeeded: int
    unreachable: int  # of the failed: no connection settings, nothing could be sent


@dataclass(frozen=True, slots=True)
class Alert:
    """Something an operator should act on. `kind`: TOPUP_WAITING, OUT_OF_STOCK, LOW_STOCK,
    SUPPLIER_FAILING, REVIEW_QUEUE; `subject` the SKU's or supplier's code; `count` the paid
    top-ups waiting, the units left, the failed exchanges or the orders waiting."""

    kind: str
    severity: str  # WARNING or CRITICAL
    subject: str | None
    name: str | None
    count: int
    since: datetime | None = None


@dataclass(frozen=True, slots=True)
class Figures:
    """What the dashboard shows; equal figures are not pushed again."""

    orders_last_minute: int
    orders_last_hour: int
    revenue_last_minute: Money
    revenue_last_hour: Money
    top_skus: tuple[SkuSales, ...]
    low_stock: tuple[LowStock, ...]
    risk_interceptions: int  # order attempts of the last hour the risk check rejected
    risk_reviews: int = 0  # order attempts of the last hour the risk check held for review
    top_risk_rules: tuple[tuple[str, int], ...] = ()  # (rule, attempts flagged), most first
    margin_last_hour: Money = Money(0, HOME_CURRENCY)  # posted by deliveries less refunds
    # Unpaid statements whose latest reconciliation found differences, and those differences.
    statements_with_discrepancies: int = 0
    reconciliation_discrepancies: int = 0
    review_queue: int = 0  # orders waiting in REVIEW now, however old
    oldest_review_at: datetime | None = None  # when the longest-waiting of them was placed
    failing_suppliers: tuple[FailingSupplier, ...] = ()
    # Paid top-ups waiting for a supplier with a usable connection, and since when the oldest has.
    topups_waiting: int = 0
    topups_waiting_since: datetime | None = None

    @property
    def alerts(self) -> tuple[Alert, ...]:
        """Most severe first: paid top-ups no supplier can take, stock gone or going where
        buyers are ordering, failing suppliers, then the review queue."""
        found = [
            Alert("TOPUP_WAITING", "CRITICAL", None, None, self.topups_waiting, self.topups_waiting_since)
        ] if self.topups_waiting else []
        found += [
            Alert("OUT_OF_STOCK" if row.available <= 0 else "LOW_STOCK",
                  "CRITICAL" if row.available <= 0 else "WARNING", row.code, row.name, row.available)
            for row in self.low_stock if row.selling
        ]
        found += [
            Alert("SUPPLIER_FAILING", "CRITICAL", row.code, row.name, row.failed) for row in self.failing_suppliers
        ]
        if self.review_queue:
            found.append(Alert("REVIEW_QUEUE", "WARNING", None, None, self.review_queue, self.oldest_review_at))
        return tuple(sorted(found, key=lambda alert: alert.severity != "CRITICAL"))


@dataclass(frozen=True, slots=True)
class Snapshot:
    at: datetime
    figures: Figures


async def snapshot(session: AsyncSession, now: datetime) -> Snapshot:
    """Orders are counted by placement time; revenue by payment time, in the home currency."""
    minute_ago, hour_ago = now - timedelta(minutes=1), now - timedelta(hours=1)

    placed = (
        await session.execute(
            select(
                func.count(),
                func.coalesce(func.sum(case((Order.created_at >= minute_ago, 1), else_=0)), 0),
            ).where(Order.created_at >= hour_ago)
        )
    ).one()
    paid = (
        await session.execute(
            select(
                func.coalesce(func.sum(Order.total_fen), 0),
                func.coalesce(func.sum(case((Order.paid_at >= minute_ago, Order.total_fen), else_=0)), 0),
            ).where(Order.paid_at >= hour_ago, Order.status.in_(SALE), Order.currency == HOME_CURRENCY)
        )
    ).one()

    top = await _top_skus(session, hour_ago)
    low = tuple(
        LowStock(row.sku_id, row.code, row.name, row.available, row.selling)
        for row in await low_stock_skus(session, now)
    )[:LOW_STOCK_LISTED]
    queue, oldest = (
        await session.execute(select(func.count(), func.min(Order.created_at)).where(Order.status == OrderStatus.REVIEW))
    ).one()
    stuck, stuck_since = await waiting_topups(session)

    risk = await risk_summary(session, hour_ago)
    margin = await session.scalar(
        select(func.coalesce(-func.sum(LedgerEntry.amount_fen), 0)).where(
            LedgerEntry.account == Account.MARGIN, LedgerEntry.at >= hour_ago, LedgerEntry.currency == HOME_CURRENCY
        )
    )
    disputed, discrepancies = await open_discrepancies(session)

    return Snapshot(
        at=now,
        figures=Figures(
            orders_last_minute=int(placed[1]),
            orders_last_hour=int(placed[0]),
            revenue_last_minute=Money(int(paid[1]), HOME_CURRENCY),
            revenue_last_hour=Money(int(paid[0]), HOME_CURRENCY),
            top_skus=top,
            low_stock=low,
            risk_interceptions=risk.rejected,
            risk_reviews=risk.reviewed,
            top_risk_rules=risk.top_rules,
            margin_last_hour=Money(int(margin or 0), HOME_CURRENCY),
            statements_with_discrepancies=disputed,
            reconciliation_discrepancies=discrepancies,
            review_queue=int(queue),
            oldest_review_at=oldest,
            failing_suppliers=await failing_suppliers(session, now),
            topups_waiting=stuck,
            topups_waiting_since=stuck_since,
        ),
    )


async def _top_skus(session: AsyncSession, hour_ago: datetime) -> tuple[SkuSales, ...]:
    """The SKUs sold most in the last hour (then ordered most), one statement."""
    sold_now = and_(Order.status.in_(SALE), Order.paid_at >= hour_ago)
    ordered_now = and_(Order.status.in_(DEMAND), Order.created_at >= hour_ago)
    sold = func.sum(case((sold_now, OrderLine.quantity), else_=0))
    revenue = func.sum(case((sold_now, OrderLine.quantity * OrderLine.unit_price_fen), else_=0))
    ordered = func.sum(case((ordered_now, OrderLine.quantity), else_=0))
    rows = await session.execute(
        # An order is in its SKUs' currency (placing refuses a mismatch).
        select(Sku.id, Sku.code, Sku.name, Sku.currency, sold, revenue, ordered)
        .join(OrderLine, OrderLine.sku_id == Sku.id)
        .join(Order, Order.id == OrderLine.order_id)
        .where(or_(sold_now, ordered_now))
        .group_by(Sku.id, Sku.code, Sku.name, Sku.currency)
        .order_by(sold.desc(), ordered.desc(), revenue.desc(), Sku.id)
        .limit(TOP_SKUS)
    )
    return tuple(
        SkuSales(sku_id, code, name, int(units), Money(int(fen), currency), int(placed))
        for sku_id, code, name, currency, units, fen, placed in rows
    )


async def failing_suppliers(session: AsyncSession, now: datetime) -> tuple[FailingSupplier, ...]:
    """Suppliers whose exchanges of the last SUPPLIER_WINDOW failed more often than not."""
    failed = or_(SupplierAttempt.outcome.in_(FAILED_EXCHANGES), SupplierAttempt.action == UNREACHABLE)
    rows = await session.execute(
        select(
            Supplier.code, Supplier.name,
            func.sum(case((failed, 1), else_=0)),
            func.sum(case((and_(~failed, SupplierAttempt.outcome == "SUCCEEDED"), 1), else_=0)),
            func.sum(case((SupplierAttempt.action == UNREACHABLE, 1), else_=0)),
        )
        .join(Supplier, Supplier.id == SupplierAttempt.supplier_id)
        .where(SupplierAttempt.at >= now - SUPPLIER_WINDOW)
        .group_by(Supplier.code, Supplier.name)
    )
    found = [
        FailingSupplier(code, name, int(bad), int(good), int(unreachable))
        for code, name, bad, good, unreachable in rows if int(bad) > int(good)
    ]
    return tuple(sorted(found, key=lambda row: (-row.failed, row.code)))
