"""The operators' live dashboard: one snapshot of the shop, computed by a handful of statements."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.analytics import DEMAND, HOME_CURRENCY, SALE
from domain.ledger import Account
from domain.money import Money
from models import LedgerEntry, Order, OrderLine, Product, Sku
from services.inventory.stock import stock_for
from services.risk.reads import summary as risk_summary
from services.settlement.reconciliation import open_discrepancies

TOP_SKUS = 5
# A SKU with this many sellable units or fewer is listed as running low.
LOW_STOCK = 10
LOW_STOCK_LISTED = 10


@dataclass(frozen=True, slots=True)
class SkuSales:
    """A SKU's units in orders of the last hour still open or paid, and its paid revenue."""

    sku_id: int
    code: str
    name: str
    units: int
    revenue: Money


@dataclass(frozen=True, slots=True)
class LowStock:
    sku_id: int
    code: str
    name: str
    available: int


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
    risk_reviews: int = 0  # orders of the last hour held for review
    top_risk_rules: tuple[tuple[str, int], ...] = ()  # (rule, attempts flagged), most first
    margin_last_hour: Money = Money(0, HOME_CURRENCY)  # posted by deliveries less refunds
    # Unpaid statements whose latest reconciliation found differences, and those differences.
    statements_with_discrepancies: int = 0
    reconciliation_discrepancies: int = 0


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

    units = func.sum(OrderLine.quantity)
    revenue = func.sum(case((Order.status.in_(SALE), OrderLine.quantity * OrderLine.unit_price_fen), else_=0))
    top = [
        # An order is in its SKUs' currency (placing refuses a mismatch).
        SkuSales(sku_id, code, name, int(count), Money(int(fen), currency))
        for sku_id, code, name, currency, count, fen in await session.execute(
            select(Sku.id, Sku.code, Sku.name, Sku.currency, units, revenue)
            .join(OrderLine, OrderLine.sku_id == Sku.id)
            .join(Order, Order.id == OrderLine.order_id)
            .where(Order.created_at >= hour_ago, Order.status.in_(DEMAND))
            .group_by(Sku.id, Sku.code, Sku.name, Sku.currency)
            .order_by(units.desc(), revenue.desc(), Sku.id)
            .limit(TOP_SKUS)
        )
    ]

    on_sale = {
        sku_id: (code, name)
        for sku_id, code, name in await session.execute(
            select(Sku.id, Sku.code, Sku.name)
            .join(Product, Product.id == Sku.product_id)
            .where(Sku.active.is_(True), Product.active.is_(True))
        )
    }
    stock = await stock_for(session, list(on_sale), now=now)
    low = sorted(
        (LowStock(sku_id, *on_sale[sku_id], figures.available) for sku_id, figures in stock.items()
         if figures.available <= LOW_STOCK),
        key=lambda row: (row.available, row.code),
    )[:LOW_STOCK_LISTED]

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
            top_skus=tuple(top),
            low_stock=tuple(low),
            risk_interceptions=risk.rejected,
            risk_reviews=risk.reviewed,
            top_risk_rules=risk.top_rules,
            margin_last_hour=Money(int(margin or 0), HOME_CURRENCY),
            statements_with_discrepancies=disputed,
            reconciliation_discrepancies=discrepancies,
        ),
    )
