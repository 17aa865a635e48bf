"""Types of membership subscriptions (会员订阅). `Subscription` is GraphQL's root of live
operations, so the type of a subscription to a plan is `Membership`."""

from __future__ import annotations

from datetime import datetime

import strawberry

from domain.memberships import RENEWING, MembershipStatus, Period, next_charge, period_end
from schema.money import Money
from schema.relay import encode_id
from services.memberships.reads import MembershipView

SubscriptionPeriod = strawberry.enum(Period, name="SubscriptionPeriod", description="How often a membership renews.")
MembershipState = strawberry.enum(MembershipStatus, name="MembershipStatus", description=(
    "ACTIVE: paid for the current period, renews. PAST_DUE: a renewal was declined and is retried within the "
    "grace period. CANCELLED: no more renewals, the paid period stays. LAPSED: declined through the grace period."
))


@strawberry.type(description="A direct top-up SKU sold by subscription.")
class MembershipPlan:
    sku_id: strawberry.ID
    period: SubscriptionPeriod  # type: ignore[valid-type]
    enabled: bool
    max_charge: Money = strawberry.field(description="The most one renewal may charge; the buyer agrees to it.")


@strawberry.type(description="An order that paid, or failed to pay, a period of a membership.")
class MembershipOrder:
    period: int
    id: strawberry.ID = strawberry.field(description="The order's ID: readable by its channel's partner and operators.")
    number: str
    status: str
    total: Money


@strawberry.type(description="One entry of a membership's history.")
class MembershipEvent:
    kind: str = strawberry.field(description="SIGNED, CHARGED, DECLINED, REMINDED, CANCELLED or LAPSED.")
    period: int | None
    order_number: str | None
    amount: Money | None
    detail: str
    at: datetime


@strawberry.type(description="A buyer's subscription to a plan: every period an ordinary order, paid through the agreement.")
class Membership:
    id: strawberry.ID
    number: str
    channel: str
    sku_id: strawberry.ID
    sku_code: str
    period: SubscriptionPeriod  # type: ignore[valid-type]
    status: MembershipState  # type: ignore[valid-type]
    paid_periods: int
    started_at: datetime
    current_period_end: datetime = strawberry.field(description="The end of the last period paid for.")
    next_renewal_at: datetime | None = strawberry.field(description=(
        "When the next charge is due (past due: its next retry); null once ended."))
    ended_at: datetime | None
    orders: list[MembershipOrder] = strawberry.field(description="The order of each period's charge, oldest first.")
    events: list[MembershipEvent]

    @classmethod
    def from_view(cls, view: MembershipView) -> Membership:
        row, currency = view.row, view.currency
        orders, events = [], []
        for event, order in view.events:
            if order is not None and event.kind in ("CHARGED", "DECLINED"):
                orders.append(MembershipOrder(
                    period=event.period or 0, id=encode_id("Order", order.id), number=order.number,
                    status=order.status.value, total=Money.fen(order.total_fen, order.currency),
                ))
            events.append(MembershipEvent(
                kind=event.kind, period=event.period, order_number=order.number if order else None,
                amount=Money.fen(event.amount_fen, currency) if event.amount_fen is not None else None,
                detail=event.detail, at=event.at,
            ))
        renewing = row.status in RENEWING
        return cls(
            id=encode_id("Membership", row.id), number=row.number, channel=view.channel,
            sku_id=encode_id("Sku", row.sku_id), sku_code=view.sku_code, period=row.period, status=row.status,
            paid_periods=row.paid_periods, started_at=row.started_at,
            current_period_end=period_end(row.started_at, row.period, row.paid_periods),
            next_renewal_at=next_charge(row.started_at, row.period, row.paid_periods, row.declined) if renewing else None,
            ended_at=row.ended_at, orders=orders, events=events,
        )
