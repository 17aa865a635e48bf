"""An imported order delivered: its report to the marketplace queued in the same transaction
(services/marketplaces/reports.py sends it)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.orders import OrderStatus
from models import MarketplaceOrder, Order
from services.core import jobs
from services.marketplace_events.connected import CONNECTED
from services.marketplace_events.states import IMPORTED, PENDING, REPORT, report_key

_DELIVERED = (OrderStatus.DELIVERED, OrderStatus.PARTIALLY_DELIVERED)


async def order_delivered(session: AsyncSession, order: Order, at: datetime) -> None:
    """Queue the report of an imported order that just became delivered, in this transaction.
    An order of a channel without a marketplace costs no statement."""
    if order.status not in _DELIVERED or order.channel_id not in await CONNECTED.channels(session):
        return
    record_id = (await session.execute(_MARK_PENDING, {"order": order.id, "at": at})).scalar_one_or_none()
    if record_id is not None:
        await jobs.enqueue(session, REPORT, report_key(record_id), now=at, payload={"record": record_id})


_RECORD = MarketplaceOrder.__table__
_MARK_PENDING = (
    update(_RECORD)
    .where(_RECORD.c.order_id == bindparam("order"), _RECORD.c.status == IMPORTED, _RECORD.c.report_status.is_(None))
    .values(report_status=PENDING, updated_at=bindparam("at"))
    .returning(_RECORD.c.id)
)
