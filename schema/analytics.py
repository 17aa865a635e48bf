"""Analytics types: sales by time bucket, top products, channel performance, the live dashboard."""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal

import strawberry

from domain import analytics as domain
from domain.access import may_read_costs
from schema.context import Info
from schema.money import Money
from schema.relay import encode_id
from services.analytics import dashboard
from services.analytics import sales as analytics

TimeBucket = strawberry.enum(domain.TimeBucket, description="The width of a sales bucket, aligned in the offset of `from`.")


@strawberry.enum(description="What top products are ranked by.")
class ProductRanking(enum.Enum):
    UNITS = "UNITS"
    REVENUE = "REVENUE"


@strawberry.type(description="A SKU as analytics name it; `node(id:)` gives the rest.")
class SkuSummary:
    id: strawberry.ID
    code: str
    name: str


@strawberry.type(description="A product as analytics name it; `node(id:)` gives the rest.")
class ProductSummary:
    id: strawberry.ID
    slug: str
    name: str


@strawberry.type(description="Orders placed in one time bucket: revenue from those paid, refunds from those refunded.")
class SalesBucket:
    start: datetime
    orders: int = strawberry.field(description="Orders placed, whatever became of them.")
    units: int = strawberry.field(description="Units in the orders placed.")
    paid_orders: int
    revenue: Money
    refunds: Money

    @classmethod
    def of(cls, row: analytics.SalesBucket) -> SalesBucket:
        return cls(
            start=row.start, orders=row.orders, units=row.units, paid_orders=row.paid_orders,
            revenue=Money.of(row.revenue), refunds=Money.of(row.refunds),
        )


@strawberry.type(description="A product's sales in paid orders over a period.")
class TopProduct:
    product: ProductSummary
    orders: int
    units: int
    revenue: Money

    @classmethod
    def of(cls, row: analytics.ProductSales) -> TopProduct:
        product = ProductSummary(id=encode_id("Product", row.product_id), slug=row.slug, name=row.name)
        return cls(product=product, orders=row.orders, units=row.units, revenue=Money.of(row.revenue))


@strawberry.type(description="One channel's orders over a period, from placement to delivery.")
class ChannelPerformance:
    channel: str
    orders: int = strawberry.field(description="Orders placed.")
    paid_orders: int
    revenue: Money
    refunds: Money
    delivered: int
    conversion: Decimal | None = strawberry.field(
        description="Delivered orders per order placed, to four places; null when none was placed."
    )
    risk_rejections: int = strawberry.field(description="Attempts the risk check rejected (they placed no order).")
    risk_rejection_rate: Decimal | None = strawberry.field(
        description="Rejected attempts per attempt (orders placed plus rejected), to four places; null when there were none."
    )
    _margin: strawberry.Private[Money]

    @classmethod
    def of(cls, row: analytics.ChannelFigures) -> ChannelPerformance:
        return cls(
            channel=row.channel, orders=row.orders, paid_orders=row.paid_orders,
            revenue=Money.of(row.revenue), refunds=Money.of(row.refunds), delivered=row.delivered,
            conversion=row.conversion, risk_rejections=row.risk_rejections,
            risk_rejection_rate=row.risk_rejection_rate, _margin=Money.of(row.margin),
        )

    @strawberry.field(description="The platform's margin posted in the period: deliveries less refunds. Operators only.")
    def margin(self, info: Info) -> Money | None:
        return self._margin if may_read_costs(info.context.principal) else None


@strawberry.type(description="One supplier's deliveries posted over a period, from the ledger.")
class SupplierPerformance:
    supplier: str
    lines: int = strawberry.field(description="Order lines delivered.")
    gross: Money
    cost: Money
    margin: Money = strawberry.field(description="Deliveries less refunds.")
    refunded_cost: Money

    @classmethod
    def of(cls, row: analytics.SupplierFigures) -> SupplierPerformance:
        return cls(
            supplier=row.supplier, lines=row.lines, gross=Money.of(row.gross), cost=Money.of(row.cost),
            margin=Money.of(row.margin), refunded_cost=Money.of(row.refunded_cost),
        )


@strawberry.type(description="A SKU's units in orders of the last hour still open or paid, and the revenue of the paid ones.")
class TopSku:
    sku: SkuSummary
    units: int
    revenue: Money


@strawberry.type(description="A SKU on sale that is running out: this many units or fewer can be sold.")
class LowStock:
    sku: SkuSummary
    available: int


@strawberry.type(description="A risk rule and how many attempts it flagged.")
class RiskRuleHits:
    rule: str
    attempts: int


@strawberry.type(description="The shop now: orders by placement time, revenue by payment time.")
class DashboardSnapshot:
    at: datetime
    orders_last_minute: int
    orders_last_hour: int
    revenue_last_minute: Money
    revenue_last_hour: Money
    top_skus: list[TopSku]
    low_stock: list[LowStock]
    risk_interceptions: int = strawberry.field(description="Order attempts of the last hour the risk check rejected.")
    risk_reviews: int = strawberry.field(description="Orders of the last hour the risk check held for review.")
    top_risk_rules: list[RiskRuleHits] = strawberry.field(description="The rules that flagged most attempts in the last hour.")
    margin_last_hour: Money = strawberry.field(description="The platform's margin posted in the last hour.")
    statements_with_discrepancies: int = strawberry.field(
        description="Unpaid statements whose latest reconciliation found differences."
    )
    reconciliation_discrepancies: int = strawberry.field(description="The differences those reconciliations found.")

    @classmethod
    def of(cls, snapshot: dashboard.Snapshot) -> DashboardSnapshot:
        """Built once per snapshot and shared by every subscriber."""
        f = snapshot.figures
        return cls(
            at=snapshot.at,
            orders_last_minute=f.orders_last_minute,
            orders_last_hour=f.orders_last_hour,
            revenue_last_minute=Money.of(f.revenue_last_minute),
            revenue_last_hour=Money.of(f.revenue_last_hour),
            top_skus=[TopSku(sku=_sku(s.sku_id, s.code, s.name), units=s.units, revenue=Money.of(s.revenue)) for s in f.top_skus],
            low_stock=[LowStock(sku=_sku(s.sku_id, s.code, s.name), available=s.available) for s in f.low_stock],
            risk_interceptions=f.risk_interceptions,
            risk_reviews=f.risk_reviews,
            top_risk_rules=[RiskRuleHits(rule=rule, attempts=count) for rule, count in f.top_risk_rules],
            margin_last_hour=Money.of(f.margin_last_hour),
            statements_with_discrepancies=f.statements_with_discrepancies,
            reconciliation_discrepancies=f.reconciliation_discrepancies,
        )


def _sku(pk: int, code: str, name: str) -> SkuSummary:
    return SkuSummary(id=encode_id("Sku", pk), code=code, name=name)
