"""The order events: told in the transaction of each status change after placement.

`order.status_changed` for every change; `order.paid` and `order.delivered` besides, for
the moves that make them. (`order.refunded` is told where the refund is decided, with its
amount: services/fulfilment/fulfil.py.) Placement itself is the caller's own answer, and
stays off this path: placing an order queues nothing here.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from domain.orders import OrderStatus
from models import Order
from services.webhooks import events, payloads

_ALSO = {OrderStatus.PAID: events.ORDER_PAID, OrderStatus.DELIVERED: events.ORDER_DELIVERED}


async def order_moved(session: AsyncSession, order: Order, previous: OrderStatus | None, at: datetime) -> None:
    endpoints = await events.audience(session, order.channel_id)
    kinds = [events.ORDER_STATUS_CHANGED, *([_ALSO[order.status]] if order.status in _ALSO else [])]
    kinds = [kind for kind in kinds if events.listens(endpoints, kind)]
    if not kinds:
        return  # nobody listens: one read, nothing written
    data = await payloads.order(session, order, previous, at)
    for kind in kinds:
        await events.emit(session, kind, data, channel_id=order.channel_id, now=at, endpoints=endpoints)


async def order_refunded(session: AsyncSession, order: Order, amount_fen: int, at: datetime) -> None:
    endpoints = await events.audience(session, order.channel_id)
    if not events.listens(endpoints, events.ORDER_REFUNDED):
        return
    data = await payloads.order(session, order, None, at)
    data["refund"] = payloads.money(amount_fen, order.currency)
    await events.emit(session, events.ORDER_REFUNDED, data, channel_id=order.channel_id, now=at, endpoints=endpoints)
