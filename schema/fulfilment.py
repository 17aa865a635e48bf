"""Fulfilment types: delivered codes, deliveries, reveal audit rows, refunds."""

from __future__ import annotations

from datetime import datetime

import strawberry

from domain.access import may_read_order
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


@strawberry.type(description="How a line's codes went out on one channel.")
class Delivery:
    channel: str = strawberry.field(description="INBOX, SMS or EMAIL.")
    status: str = strawberry.field(description="SENT or FAILED (retried with backoff).")
    attempts: int
    last_error: str | None
    sent_at: datetime | None

    @classmethod
    def from_model(cls, row: DeliveryRow) -> Delivery:
        return cls(channel=row.channel, status=row.status, attempts=row.attempts, last_error=row.last_error,
                   sent_at=row.sent_at)


@strawberry.type(description="One reveal of a line's codes: who, when, from which address.")
class CodeReveal:
    actor: str
    client_ip: str | None
    at: datetime


async def line_codes(info: Info, line: LineRow, order: OrderRow, channel: str, show: bool) -> list[DeliveredCode]:
    context = info.context
    if show and not may_read_order(context.principal, channel, order.number):
        raise Forbidden("codes are revealed to the order's buyer, its channel's partner, or an operator")
    box = SecretBox(context.settings.secret_key)
    if show:
        # The audit row commits before any secret leaves: no reveal goes unrecorded.
        async with context.uow() as uow:
            reveal.record(uow.session, order.id, line.id, context.principal.actor, context.client_ip, context.now)
    async with context.db.fresh_sessions() as session:
        codes = await reveal.line_codes(session, box, line.id, reveal=show)
    return [DeliveredCode(number=c.number, secret=c.secret, expires_at=c.expires_at) for c in codes]


async def line_deliveries(info: Info, line: LineRow) -> list[Delivery]:
    async with info.context.db.fresh_sessions() as session:
        return [Delivery.from_model(row) for row in await delivery.deliveries_of(session, [line.id])]


async def line_reveals(info: Info, line: LineRow) -> list[CodeReveal]:
    if not info.context.principal.is_admin:
        raise Forbidden("the reveal audit is for operators")
    async with info.context.db.fresh_sessions() as session:
        rows = await reveal.reveals_of(session, line.id)
    return [CodeReveal(actor=row.actor, client_ip=row.client_ip, at=row.at) for row in rows]
