"""After an order is placed: payment, cancellation and expiry, each exactly once."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select

from domain.orders import HOLDS_RESERVATION, IllegalTransition, OrderStatus
from models import Channel, Order, OrderLine
from services import quotas
from services.events import CATALOG_CHANGED
from services.order_events import ORDER_TOPIC, ORDERS_TOPIC, move, status_message
from services.reservation import release
from services.unit_of_work import UnitOfWork


@dataclass
class Outcome:
    order: Order | None
    error_code: str | None = None
    message: str = ""
    changed_skus: list[int] = field(default_factory=list)


def announce(uow: UnitOfWork, order: Order, previous: OrderStatus | None, at: datetime) -> None:
    """Queue the order's status change for subscribers; sent after commit."""
    message = status_message(order, previous, at)
    uow.publish(ORDER_TOPIC.format(number=order.number), message)
    uow.publish(ORDERS_TOPIC, message)


async def pay(uow: UnitOfWork, order: Order, reference: str, *, actor: str, now: datetime) -> Outcome:
    """Mark an order paid. Paying again with the same reference changes nothing."""
    reference = reference.strip()
    if not 1 <= len(reference) <= 128:
        return Outcome(order, "INVALID_INPUT", "a payment reference is 1 to 128 characters")
    if order.status is not OrderStatus.PENDING_PAYMENT:
        if order.payment_reference == reference and order.paid_at is not None:
            return Outcome(order)  # a repeated notification of the same payment
        return Outcome(order, "INVALID_STATE", f"an order that is {order.status.value} cannot be paid")
    if order.expires_at is not None and order.expires_at <= now:
        await _expire(uow, order, now)
        return Outcome(order, "ORDER_EXPIRED", "the order expired before it was paid")
    previous = order.status
    if not await move(uow.session, order, OrderStatus.PAID, actor=actor, reason=f"payment {reference}", at=now,
                      payment_reference=reference, paid_at=now, expires_at=None):
        await uow.session.refresh(order)
        return await pay(uow, order, reference, actor=actor, now=now)
    announce(uow, order, previous, now)
    return Outcome(order)


async def cancel(uow: UnitOfWork, order: Order, *, actor: str, now: datetime, reason: str = "cancelled") -> Outcome:
    try:
        return await _end_holding(uow, order, OrderStatus.CANCELLED, actor=actor, now=now, reason=reason)
    except IllegalTransition as error:
        return Outcome(order, "INVALID_STATE", str(error))


async def _expire(uow: UnitOfWork, order: Order, now: datetime) -> Outcome:
    return await _end_holding(uow, order, OrderStatus.EXPIRED, actor="system", now=now, reason="not paid in time")


async def _end_holding(
    uow: UnitOfWork, order: Order, target: OrderStatus, *, actor: str, now: datetime, reason: str
) -> Outcome:
    previous = order.status
    if previous not in HOLDS_RESERVATION:
        raise IllegalTransition(previous, target)
    if not await move(uow.session, order, target, actor=actor, reason=reason, at=now, expires_at=None):
        # Someone else moved it first (paid, expired, cancelled): report what it is now.
        await uow.session.refresh(order)
        return Outcome(order, "INVALID_STATE", f"the order is already {order.status.value}")
    lines = list(await uow.session.scalars(select(OrderLine).where(OrderLine.order_id == order.id)))
    changed = await release(uow.session, [line.id for line in lines])
    for line in lines:
        await quotas.release(uow.session, order.channel_id, line.sku_id, line.quantity)
    announce(uow, order, previous, now)
    uow.publish(CATALOG_CHANGED, b"stock")
    return Outcome(order, changed_skus=sorted(set(changed) | {line.sku_id for line in lines}))


async def expire_due(uow: UnitOfWork, now: datetime, batch: int = 100) -> int:
    """Expire unpaid orders whose time is up; safe to run in every process at once."""
    due = list(
        await uow.session.scalars(
            select(Order)
            .where(Order.status.in_(tuple(HOLDS_RESERVATION)), Order.expires_at.is_not(None), Order.expires_at <= now)
            .order_by(Order.expires_at)
            .limit(batch)
            .with_for_update(skip_locked=True)
        )
    )
    expired = 0
    for order in due:
        outcome = await _expire(uow, order, now)
        expired += outcome.error_code is None
    return expired


async def channel_code(uow: UnitOfWork, order: Order) -> str:
    return (await uow.session.scalar(select(Channel.code).where(Channel.id == order.channel_id))) or ""
