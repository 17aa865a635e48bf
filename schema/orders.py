"""Order types: Order, OrderLine, OrderEvent, and the risk verdict that let an order through
or held it (the two link to each other, so they share a module)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
from strawberry.scalars import JSON

from domain import orders as domain
from domain import risk as risk_domain
from domain.access import may_read_order, may_read_risk
from models import orders as rows
from models import risk as risk_rows
from schema.catalog import Sku, load_skus
from schema.channel import ChannelScope
from schema.context import Info
from schema.draws import DrawnItem, drawn
from schema.fulfilment import (
    CodeReveal,
    DeliveredCode,
    Delivery,
    line_codes,
    line_deliveries,
    line_reveals,
)
from schema.money import Money
from schema.payments import Refund
from schema.relay import Node, PageInfo, encode_id
from schema.risk import RiskDecision
from schema.risk_models import RiskModelScore

OrderStatus = strawberry.enum(domain.OrderStatus, description="Where an order is in its lifecycle.")


@strawberry.type(description="One transition of an order: who moved it, when, from what, to what, why.")
class OrderEvent:
    actor: str
    from_status: OrderStatus | None  # type: ignore[valid-type]
    to_status: OrderStatus  # type: ignore[valid-type]
    reason: str
    at: datetime

    @classmethod
    def from_model(cls, row: rows.OrderEvent) -> OrderEvent:
        return cls(actor=row.actor, from_status=row.from_status, to_status=row.to_status, reason=row.reason, at=row.at)


@strawberry.type
class OrderLine:
    id: strawberry.ID
    quantity: int
    unit_price: Money
    total: Money
    discount: Money = strawberry.field(description="The line's share of the order's coupon discount.")
    presale_quantity: int = strawberry.field(description="Units waiting for codes (presale), served first come first served.")
    outcome: str | None = strawberry.field(description="DELIVERED or REFUNDED once fulfilment decided the line.")
    _row: strawberry.Private[rows.OrderLine]
    _order: strawberry.Private[rows.Order]
    _scope: strawberry.Private[ChannelScope]

    @classmethod
    def from_model(cls, row: rows.OrderLine, order: rows.Order, scope: ChannelScope) -> OrderLine:
        currency = order.currency
        return cls(
            id=encode_id("OrderLine", row.id),
            outcome=row.outcome,
            quantity=row.quantity,
            unit_price=Money.fen(row.unit_price_fen, currency),
            total=Money.fen(row.unit_price_fen * row.quantity, currency),
            discount=Money.fen(row.discount_fen, currency),
            presale_quantity=row.presale_quantity,
            _row=row,
            _order=order,
            _scope=scope,
        )

    @strawberry.field(description="The codes sold to this line; secrets masked unless `reveal` (audited).")
    async def codes(self, info: Info, reveal: bool = False) -> list[DeliveredCode]:
        return await line_codes(info, self._row, self._order, self._scope.code or "", reveal)

    @strawberry.field(description=(
        "What a blind box line's units turned out to hold: empty until the line is delivered."
    ))
    async def drawn(self, info: Info) -> list[DrawnItem]:
        if self._row.outcome != "DELIVERED":
            return []
        return await drawn(info, self._row.id)

    @strawberry.field(description="How the codes went out: one entry per channel.")
    async def deliveries(self, info: Info) -> list[Delivery]:
        return await line_deliveries(info, self._row)

    @strawberry.field(description="Every reveal of this line's codes; operators only.")
    async def reveals(self, info: Info) -> list[CodeReveal]:
        return await line_reveals(info, self._row)

    @strawberry.field
    async def sku(self, info: Info) -> Sku | None:
        row = await info.context.loaders.sku_by_id.load(self._row.sku_id)
        return (await load_skus(info, [row], self._scope))[0] if row else None


@strawberry.type(description="Contact details the order was placed with.")
class OrderBuyer:
    phone: str | None
    email: str | None
    recharge_account: str | None


@strawberry.type
class Order(Node):
    number: str
    status: OrderStatus  # type: ignore[valid-type]
    channel: str
    total: Money
    discount: Money = strawberry.field(description="What the order's coupon took off; `total` is net of it.")
    coupon_code: str | None = strawberry.field(description=(
        "The coupon redeemed: a public code as the campaign spells it; a generated code only by a tag."
    ))
    buyer: OrderBuyer
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None = strawberry.field(description="An unpaid order releases its stock at this time.")
    paid_at: datetime | None
    payment_reference: str | None
    _row: strawberry.Private[rows.Order]
    _scope: strawberry.Private[ChannelScope]

    @classmethod
    def from_model(cls, row: rows.Order, scope: ChannelScope) -> Order:
        return cls(
            id=encode_id("Order", row.id),
            number=row.number,
            status=row.status,
            channel=scope.code or "",
            total=Money.fen(row.total_fen, row.currency),
            discount=Money.fen(row.discount_fen, row.currency),
            coupon_code=row.coupon_code,
            buyer=OrderBuyer(phone=row.buyer_phone, email=row.buyer_email, recharge_account=row.recharge_account),
            created_at=row.created_at,
            updated_at=row.updated_at,
            expires_at=row.expires_at,
            paid_at=row.paid_at,
            payment_reference=row.payment_reference,
            _row=row,
            _scope=scope,
        )

    @strawberry.field
    async def lines(self, info: Info) -> list[OrderLine]:
        lines = await info.context.loaders.lines_by_order.load(self._row.id)
        return [OrderLine.from_model(line, self._row, self._scope) for line in lines]

    @strawberry.field(description="The risk check's verdict: operators and the channel's partner; else null.")
    async def risk_verdict(self, info: Info) -> RiskVerdict | None:
        if not may_read_risk(info.context.principal, self._scope.code or ""):
            return None
        row = await info.context.loaders.verdict_by_order.load(self._row.id)
        return RiskVerdict.from_model(row, self._scope.code or "") if row else None

    @strawberry.field(description=(
        "Money owed back for this order, oldest first: operators, the channel's partner and the buyer."
    ))
    async def refunds(self, info: Info) -> list[Refund]:
        if not may_read_order(info.context.principal, self._scope.code or "", self._row.number):
            return []
        return [Refund.from_model(row) for row in await info.context.loaders.refunds_by_order.load(self._row.id)]

    @strawberry.field(description="The audit trail, oldest first.")
    async def events(self, info: Info) -> list[OrderEvent]:
        events = await info.context.loaders.events_by_order.load(self._row.id)
        return [OrderEvent.from_model(event) for event in events]


@strawberry.type(description="Why a rule matched: what was observed against its threshold.")
class RiskReason:
    rule: str
    observed: str | None
    threshold: str | None
    action: RiskDecision  # type: ignore[valid-type]
    score: int


@strawberry.type(description="The risk check's verdict on one order attempt.")
class RiskVerdict(Node):
    decision: RiskDecision  # type: ignore[valid-type]
    score: int = strawberry.field(description="The matching rules' scores added up, at most 100.")
    reasons: list[RiskReason]
    channel: str
    idempotency_key: str
    created_at: datetime
    _row: strawberry.Private[risk_rows.RiskVerdict]

    @classmethod
    def from_model(cls, row: risk_rows.RiskVerdict, channel: str) -> RiskVerdict:
        return cls(
            id=encode_id("RiskVerdict", row.id),
            decision=row.decision,
            score=row.score,
            reasons=[
                RiskReason(rule=r["rule"], observed=r.get("observed"), threshold=r.get("threshold"),
                           action=risk_domain.Decision(r["action"]), score=int(r["score"]))
                for r in row.reasons
            ],
            channel=channel,
            idempotency_key=row.idempotency_key,
            created_at=row.created_at,
            _row=row,
        )

    @strawberry.field(description="The facts the verdict was reached on (address, device, contact, amount); operators only.")
    def facts(self, info: Info) -> JSON | None:
        facts: Any = self._row.facts
        return facts if info.context.principal.is_admin else None

    @strawberry.field(description="The learned model's score of the attempt, where a model rule applied; operators only.")
    def model(self, info: Info) -> RiskModelScore | None:
        record = (self._row.facts or {}).get("model")
        return RiskModelScore.from_record(record) if record and info.context.principal.is_admin else None

    @strawberry.field(description="The order it let through or held; null for a rejected attempt.")
    async def order(self, info: Info) -> Order | None:
        if self._row.order_id is None:
            return None
        row = await info.context.loaders.order_by_id.load(self._row.order_id)
        channel = await info.context.loaders.channel_by_id.load(row.channel_id) if row else None
        if row is None or channel is None or not may_read_risk(info.context.principal, channel.code):
            return None
        return Order.from_model(row, ChannelScope.of(channel))


@strawberry.type
class RiskVerdictEdge:
    cursor: str
    node: RiskVerdict


@strawberry.type
class RiskVerdictConnection:
    edges: list[RiskVerdictEdge]
    page_info: PageInfo
