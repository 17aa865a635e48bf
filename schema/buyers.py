"""Buyer profiles as operators see them: figures and segment per pseudonymous buyer, contacts masked."""

from __future__ import annotations

from datetime import datetime

import strawberry

from domain import buyers as domain
from domain.money import Money as DomainMoney
from models.buyers import BuyerProfile as Row
from schema.money import Money
from schema.relay import PageInfo

BuyerSegment = strawberry.enum(domain.Segment, name="BuyerSegment", description="Where a buyer stands (用户分层).")


@strawberry.type
class CountBy:
    name: str
    orders: int


@strawberry.type(description="One buyer's figures (RFM and more); the contact masked, null once erased for retention.")
class BuyerProfile:
    buyer_id: str = strawberry.field(description="A pseudonym: the same buyer keeps it after their contacts are erased.")
    contact: str | None
    segment: BuyerSegment  # type: ignore[valid-type]
    recency_days: int | None = strawberry.field(description="Days since the last order.")
    orders: int = strawberry.field(description="Paid orders not refunded (frequency).")
    attempts: int = strawberry.field(description="Orders placed, whatever became of them.")
    spent: list[Money] = strawberry.field(description="Paid and not refunded, per currency (money).")
    first_order_at: datetime | None
    last_order_at: datetime | None
    coupon_orders: int
    channels: list[CountBy]
    categories: list[CountBy]
    reviews: int = strawberry.field(description="Orders the risk check held for review.")
    rejects: int = strawberry.field(description="Attempts the risk check rejected.")
    fraud_labels: int = strawberry.field(description="Attempts labelled fraud (review, chargeback, operator).")
    refreshed_at: datetime

    @classmethod
    def from_model(cls, row: Row, now: datetime) -> BuyerProfile:
        return cls(
            buyer_id=row.key, contact=row.contact, segment=row.segment,
            recency_days=None if row.last_at is None else max(0, (now - row.last_at).days),
            orders=row.orders, attempts=row.attempts,
            spent=[Money.of(DomainMoney(int(fen), currency)) for currency, fen in sorted(row.spent.items())],
            first_order_at=row.first_at, last_order_at=row.last_at, coupon_orders=row.coupon_orders,
            channels=_counts(row.channels), categories=_counts(row.categories),
            reviews=row.reviews, rejects=row.rejects, fraud_labels=row.fraud_labels, refreshed_at=row.refreshed_at,
        )


def _counts(found: dict[str, int]) -> list[CountBy]:
    return [CountBy(name=name, orders=int(count)) for name, count in sorted(found.items(), key=lambda i: (-int(i[1]), i[0]))]


@strawberry.type
class BuyerProfileEdge:
    cursor: str
    node: BuyerProfile


@strawberry.type
class BuyerProfileConnection:
    edges: list[BuyerProfileEdge]
    page_info: PageInfo


@strawberry.type
class BuyerSegmentCount:
    segment: BuyerSegment  # type: ignore[valid-type]
    buyers: int
