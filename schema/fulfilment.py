"""Fulfilment types: delivered codes, deliveries, reveal audit rows, refunds."""

from __future__ import annotations

from datetime import datetime

import strawberry

from domain.access import may_read_costs, may_read_order
from models import Delivery as DeliveryRow
from models import Order as OrderRow
from models import OrderLine as LineRow
from schema.context import Info
from schema.errors import Forbidden
from services.core.secret_box import SecretBox
from services.fulfilment import delivery, reveal


@strawberry.type(description="A code sold to an order line. `secret` is masked unless revealed.")
class DeliveredCode:
    number: str | None
    secret: str
    expires_at: datetime | None


@strawberry.type(
    description="How a line went out: its codes on one channel (INBOX, SMS, EMAIL), or its top-up through a "
    "supplier (SUPPLIER)."
)
class Delivery:
    channel: str = strawberry.field(description="INBOX, SMS, EMAIL, or SUPPLIER for a direct top-up.")
    status: str = strawberry.field(
        description="SENT (a top-up: credited) or FAILED (retried with backoff; a top-up: every supplier refused); "
        "a top-up is PENDING while a supplier has it or while it waits for one it can reach."
    )
    attempts: int = strawberry.field(description="Sends; for a top-up, exchanges with suppliers.")
    last_error: str | None
    sent_at: datetime | None
    supplier: str | None = strawberry.field(
        description="The supplier that delivered (for codes, the one their cost is charged to; for a top-up, the one "
        "that has it or credited it). Operators only: null for everyone else."
    )
    waiting_since: datetime | None = strawberry.field(
        description="A top-up none of whose suppliers can be reached: since when it waits for an operator to connect one."
    )

    @classmethod
    def from_model(cls, row: DeliveryRow, supplier: str | None) -> Delivery:
        return cls(channel=row.channel, status=row.status, attempts=row.attempts, last_error=row.last_error,
                   sent_at=row.sent_at, supplier=supplier, waiting_since=None)

    @classmethod
    def of_topup(cls, row: delivery.TopUpDelivery, supplier: str | None) -> Delivery:
        return cls(channel="SUPPLIER", status=row.status, attempts=row.attempts, last_error=None, sent_at=row.sent_at,
                   supplier=supplier, waiting_since=row.waiting_since)


@strawberry.type(description="One reveal of a line's codes: who, when, from which address.")
class CodeReveal:
    actor: str
    client_ip: str | None
    at: datetime


async def line_codes(info: Info, line: LineRow, order: OrderRow, channel: str, show: bool) -> list[DeliveredCode]:
    context = info.context
    if show and not may_read_order(context.principal, channel, order.number):
        raise Forbidden("codes are revealed to the order's buyer, its channel's partner, or an operator")
    box = SecretBox(context.settings.secret_key, context.settings.old_secret_keys)
    if show:
        # The audit row commits before any secret leaves: no reveal goes unrecorded.
        async with context.uow() as uow:
            reveal.record(uow.session, order.id, line.id, context.principal.actor, context.client_ip, context.now)
    async with context.db.fresh_sessions() as session:
        codes = await reveal.line_codes(session, box, line.id, reveal=show)
    return [DeliveredCode(number=c.number, secret=c.secret, expires_at=c.expires_at) for c in codes]


async def line_deliveries(info: Info, line: LineRow) -> list[Delivery]:
    operator = may_read_costs(info.context.principal)
    async with info.context.db.fresh_sessions() as session:
        sent = await delivery.deliveries_of(session, [line.id])
        topups = await delivery.topup_deliveries(session, line.id)
        supplier = await delivery.line_supplier(session, line.id) if operator and line.supplier_id else None
    return [
        *(Delivery.from_model(row, supplier) for row in sent),
        *(Delivery.of_topup(row, row.supplier if operator else None) for row in topups),
    ]


async def line_reveals(info: Info, line: LineRow) -> list[CodeReveal]:
    if not info.context.principal.is_admin:
        raise Forbidden("the reveal audit is for operators")
    async with info.context.db.fresh_sessions() as session:
        rows = await reveal.reveals_of(session, line.id)
    return [CodeReveal(actor=row.actor, client_ip=row.client_ip, at=row.at) for row in rows]
