"""Order transitions: the checked status change, its audit row, and the event topics."""

from __future__ import annotations

from datetime import datetime

import orjson
from sqlalchemy import bindparam, insert, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from domain.orders import OrderStatus, check_move
from models import Order, OrderEvent
from services.core import telemetry
from services.core.database import rows_changed
from services.marketplace_events.delivered import order_delivered
from services.webhooks.order_events import order_moved

ORDER_TOPIC = "order.{number}"
ORDERS_TOPIC = "orders"


def record_transition(
    session: AsyncSession, order: Order, previous: OrderStatus | None, status: OrderStatus,
    actor: str, reason: str, at: datetime,
) -> None:
    session.add(OrderEvent(order_id=order.id, actor=actor, from_status=previous, to_status=status, reason=reason[:500], at=at))
    telemetry.order_transition(session, previous, status)


async def move(
    session: AsyncSession, order: Order, target: OrderStatus, *, actor: str, reason: str, at: datetime,
    **values: object,
) -> bool:
    """Move `order` to `target` if it is still in the status we read.

    The UPDATE is conditional on the current status, so of two concurrent commands
    (a payment and an expiry, say) exactly one wins; the loser sees False.
    Raises IllegalTransition for a move the state machine forbids.
    """
    current = order.status
    check_move(current, target)
    # Core statements on the session's connection: no ORM layer on a path every order takes.
    connection = await session.connection()
    moved = {"order": order.id, "current": current, "target": target, "at": at}
    if values:
        result = await connection.execute(
            update(_ORDER).where(_ORDER.c.id == order.id, _ORDER.c.status == current)
            .values(status=target, updated_at=at, **values)
        )
    else:
        result = await connection.execute(_MOVE, moved)
    if rows_changed(result) != 1:
        return False
    # The row is written: record the values as loaded, so no flush writes them again.
    set_committed_value(order, "status", target)
    set_committed_value(order, "updated_at", at)
    for name, value in values.items():
        set_committed_value(order, name, value)
    await connection.execute(_EVENT, {
        "order_id": order.id, "actor": actor, "from_status": current, "to_status": target, "reason": reason[:500],
        "at": at,
    })
    telemetry.order_transition(session, current, target)
    await order_moved(session, order, current, at)  # webhooks, queued with the change
    await order_delivered(session, order, at)  # a marketplace's delivery report, likewise
    return True


_ORDER = Order.__table__
_MOVE = (
    update(_ORDER).where(_ORDER.c.id == bindparam("order"), _ORDER.c.status == bindparam("current"))
    .values(status=bindparam("target"), updated_at=bindparam("at"))
)
_EVENT = insert(OrderEvent.__table__)


def status_message(order: Order, previous: OrderStatus | None, at: datetime) -> bytes:
    return orjson.dumps(
        {
            "orderNumber": order.number,
            "orderId": order.id,
            "status": order.status.value,
            "previousStatus": previous.value if previous else None,
            "at": at.isoformat(),
        }
    )
