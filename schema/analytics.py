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
    discounts: Money = strawberry.field(description="What coupons took off the paid orders; revenue is net of it.")

    @classmethod
    def of(cls, row: analytics.SalesBucket) -> SalesBucket:
        return cls(
            start=row.start, orders=row.orders, units=row.units, paid_orders=row.paid_orders,
            revenue=Money.of(row.revenue), refunds=Money.of(row.refunds),
            discounts=Money.of(row.discounts) if row.discounts is not None else Money.fen(0, row.revenue.currency),
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


@strawberry.type(
    description="A SKU's sales of the last hour: units sold in orders paid in it and their revenue (one "
    "basis), and units ordered in orders placed in it, open or paid."
)
class TopSku:
    sku: SkuSummary
    units_sold: int = strawberry.field(description="Units in orders paid in the last hour.")
    revenue: Money = strawberry.field(description="What those units were paid.")
    units_ordered: int = strawberry.field(description="Units in orders placed in the last hour, open or paid.")

    @strawberry.field(deprecation_reason="Use unitsOrdered (or unitsSold, which revenue is for).")
    def units(self) -> int:
        return self.units_ordered


@strawberry.type(description="A SKU on sale that is running out: this many units or fewer can be sold.")
class LowStock:
    sku: SkuSummary
    available: int
    selling: bool = strawberry.field(description="Ordered in the last hour: buyers will meet the shortage.")


@strawberry.type(description="A risk rule and how many attempts it flagged.")
class RiskRuleHits:
    rule: str
    attempts: int


@strawberry.type(description="A supplier more of whose exchanges failed than succeeded in the last 15 minutes.")
class FailingSupplier:
    code: str
    name: str
    failed: int = strawberry.field(description="Exchanges refused, unanswered, or never sent for want of a connection.")
    succeeded: int
    unreachable: int = strawberry.field(description="Of the failed: no usable connection settings, nothing was sent.")


@strawberry.enum(description="What a dashboard alert is about.")
class DashboardAlertKind(enum.Enum):
    TOPUP_WAITING = "TOPUP_WAITING"
    OUT_OF_STOCK = "OUT_OF_STOCK"
    LOW_STOCK = "LOW_STOCK"
    SUPPLIER_FAILING = "SUPPLIER_FAILING"
    REVIEW_QUEUE = "REVIEW_QUEUE"


@strawberry.enum
class AlertSeverity(enum.Enum):
    CRITICAL = "CRITICAL"
    WARNING = "WARNING"


ALERT_MESSAGES = {
    "TOPUP_WAITING": "{count} paid top-ups wait for a supplier with a usable connection",
    "OUT_OF_STOCK": "{name} ({subject}) is sold out while buyers order it",
    "LOW_STOCK": "{name} ({subject}) has {count} left and is selling",
    "SUPPLIER_FAILING": "supplier {name} ({subject}) failed {count} exchanges in 15 minutes",
    "REVIEW_QUEUE": "{count} orders wait for risk review",
}


@strawberry.type(description="Something an operator should act on now; the page words it in the reader's language.")
class DashboardAlert:
    kind: DashboardAlertKind
    severity: AlertSeverity
    subject: str | None = strawberry.field(description="The SKU's or supplier's code.")
    name: str | None
    count: int = strawberry.field(description="Units left, failed exchanges, or orders waiting.")
    since: datetime | None = strawberry.field(
        description="REVIEW_QUEUE: when the longest-waiting order was placed; TOPUP_WAITING: since when the oldest top-up waits."
    )
    message: str = strawberry.field(description="In English.")

    @classmethod
    def of(cls, alert: dashboard.Alert) -> DashboardAlert:
        return cls(
            kind=DashboardAlertKind(alert.kind), severity=AlertSeverity(alert.severity), subject=alert.subject,
            name=alert.name, count=alert.count, since=alert.since,
            message=ALERT_MESSAGES[alert.kind].format(name=alert.name, subject=alert.subject, count=alert.count),
        )


@strawberry.type(description="The shop now: orders by placement time, revenue and units sold by payment time.")
class DashboardSnapshot:
    at: datetime
    orders_last_minute: int
    orders_last_hour: int
    revenue_last_minute: Money
    revenue_last_hour: Money
    top_skus: list[TopSku]
    low_stock: list[LowStock]
    risk_interceptions: int = strawberry.field(description="Order attempts of the last hour the risk check rejected.")
    risk_reviews: int = strawberry.field(description="Order attempts of the last hour the risk check held for review.")
    review_queue: int = strawberry.field(description="Orders waiting for an operator's review now, however old.")
    oldest_review_at: datetime | None = strawberry.field(description="When the longest-waiting of them was placed.")
    top_risk_rules: list[RiskRuleHits] = strawberry.field(description="The rules that flagged most attempts in the last hour.")
    margin_last_hour: Money = strawberry.field(description="The platform's margin posted in the last hour.")
    statements_with_discrepancies: int = strawberry.field(
        description="Unpaid statements whose latest reconciliation found differences."
    )
    reconciliation_discrepancies: int = strawberry.field(description="The differences those reconciliations found.")
    failing_suppliers: list[FailingSupplier]
    topups_waiting: int = strawberry.field(description="Paid top-ups waiting for a supplier with a usable connection.")
    alerts: list[DashboardAlert] = strawberry.field(description="Most severe first.")

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
            top_skus=[
                TopSku(sku=_sku(s.sku_id, s.code, s.name), units_sold=s.units_sold, revenue=Money.of(s.revenue),
                       units_ordered=s.units_ordered)
                for s in f.top_skus
            ],
            low_stock=[LowStock(sku=_sku(s.sku_id, s.code, s.name), available=s.available, selling=s.selling)
                       for s in f.low_stock],
            risk_interceptions=f.risk_interceptions,
            risk_reviews=f.risk_reviews,
            review_queue=f.review_queue,
            oldest_review_at=f.oldest_review_at,
            top_risk_rules=[RiskRuleHits(rule=rule, attempts=count) for rule, count in f.top_risk_rules],
            margin_last_hour=Money.of(f.margin_last_hour),
            statements_with_discrepancies=f.statements_with_discrepancies,
            reconciliation_discrepancies=f.reconciliation_discrepancies,
            failing_suppliers=[
                FailingSupplier(code=s.code, name=s.name, failed=s.failed, succeeded=s.succeeded, unreachable=s.unreachable)
                for s in f.failing_suppliers
            ],
            topups_waiting=f.topups_waiting,
            alerts=[DashboardAlert.of(alert) for alert in f.alerts],
        )


def _sku(pk: int, code: str, name: str) -> SkuSummary:
    return SkuSummary(id=encode_id("Sku", pk), code=code, name=name)
