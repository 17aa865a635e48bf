"""Marketplace connector types: the trades taken from marketplaces and the connections."""

from __future__ import annotations

from datetime import datetime

import strawberry

from models import MarketplaceConnection as ConnectionRow
from models import MarketplaceOrder as TradeRow
from schema.errors import UserError
from schema.payments import Refund
from schema.relay import PageInfo, encode_id


@strawberry.type(description="How a delivery (虚拟发货), or a decision on a refund, was reported back to the marketplace.")
class MarketplaceDeliveryReport:
    status: str = strawberry.field(description="PENDING (being reported or retried), REPORTED or FAILED.")
    attempts: int
    error: str | None = strawberry.field(description="The last failure, as the marketplace or the network gave it.")
    reported_at: datetime | None


@strawberry.type(description="One marketplace order (trade), however often it was pulled or pushed.")
class MarketplaceTrade:
    id: strawberry.ID
    channel: str
    tid: str = strawberry.field(description="The marketplace's order number: the order's idempotency key.")
    status: str = strawberry.field(description="RECEIVED, IMPORTED, FAILED (see reason) or CANCELLED (refunded before delivery).")
    reason: str | None
    source: str = strawberry.field(description="PULL or PUSH: how it first came.")
    seen: int = strawberry.field(description="How often it came (duplicates in pulls, a push and a pull).")
    order_id: strawberry.ID | None
    order_number: str | None
    delivery_report: MarketplaceDeliveryReport | None
    refund_id: str | None
    refund_status: str | None = strawberry.field(description=(
        "REFUNDED (honoured before delivery), REQUESTED (delivered: a Refund on the order for operators to "
        "decide with resolveMarketplaceRefund), AGREED, REFUSED, or CLOSED (closed on the marketplace first)."))
    refund_report: MarketplaceDeliveryReport | None = strawberry.field(
        description="How the decision on the refund was reported back to the marketplace.")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_model(cls, row: TradeRow, channel: str, order_number: str | None) -> MarketplaceTrade:
        report = None if row.report_status is None else MarketplaceDeliveryReport(
            status=row.report_status, attempts=row.report_attempts, error=row.report_error, reported_at=row.reported_at)
        return cls(
            id=encode_id("MarketplaceTrade", row.id), channel=channel, tid=row.tid, status=row.status, reason=row.reason,
            source=row.source, seen=row.seen, order_id=encode_id("Order", row.order_id) if row.order_id else None,
            order_number=order_number, delivery_report=report, refund_id=row.refund_id, refund_status=row.refund_status,
            refund_report=None if row.refund_report_status is None else MarketplaceDeliveryReport(
                status=row.refund_report_status, attempts=row.refund_report_attempts, error=row.refund_report_error,
                reported_at=None),
            created_at=row.created_at, updated_at=row.updated_at,
        )


@strawberry.type
class MarketplaceTradeEdge:
    cursor: str
    node: MarketplaceTrade


@strawberry.type
class MarketplaceTradeConnection:
    edges: list[MarketplaceTradeEdge]
    page_info: PageInfo


@strawberry.type(description="A channel's marketplace: where it is reached and how far its pulls have come.")
class MarketplaceConnection:
    channel: str
    adapter: str
    endpoint: str
    app_key: str
    poll_seconds: int
    enabled: bool
    trades_cursor: datetime | None
    refunds_cursor: datetime | None
    last_pull_at: datetime | None
    last_error: str | None

    @classmethod
    def from_model(cls, row: ConnectionRow, channel: str) -> MarketplaceConnection:
        return cls(channel=channel, adapter=row.adapter, endpoint=row.base_url, app_key=row.app_key,
                   poll_seconds=row.poll_seconds, enabled=row.enabled, trades_cursor=row.trades_cursor,
                   refunds_cursor=row.refunds_cursor, last_pull_at=row.last_pull_at, last_error=row.last_error)


@strawberry.type
class RetryMarketplaceDeliveryPayload:
    trade: MarketplaceTrade | None
    user_errors: list[UserError]


@strawberry.type
class ResolveMarketplaceRefundPayload:
    refund: Refund | None
    trade: MarketplaceTrade | None
    user_errors: list[UserError]


@strawberry.type
class RetryMarketplaceImportPayload:
    trade: MarketplaceTrade | None
    user_errors: list[UserError]
