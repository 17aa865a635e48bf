"""After an order is placed: payment, cancellation and expiry, each exactly once."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.orders import HOLDS_RESERVATION, IllegalTransition, OrderStatus
from models import Channel, Order, OrderLine
from services.campaigns import redemption
from services.core import jobs
from services.core.events import stock_event
from services.core.unit_of_work import UnitOfWork
from services.inventory import quotas
from services.inventory.reservation import release
from services.orders import tallies
from services.orders.events import ORDER_TOPIC, ORDERS_TOPIC, move, status_message


@dataclass
class Outcome:
    order: Order | None
    error_code: str | None = None
    message: str = ""
    changed_skus: list[int] = field(default_factory=list)
    error_field: str | None = None  # the input at fault, when not the order itself


def announce(uow: UnitOfWork, order: Order, previous: OrderStatus | None, at: datetime) -> None:
    """Queue the order's status change for subscribers; sent after commit."""
    message = status_message(order, previous, at)
    uow.publish(ORDER_TOPIC.format(number=order.number), message)
    uow.publish(ORDERS_TOPIC, message)


async def pay(uow: UnitOfWork, order: Order, reference: str, *, actor: str, now: datetime) -> Outcome:
    """Mark an order paid. Paying again with the same reference changes nothing."""
    reference = reference.strip()
    if not 1 <= len(reference) <= 128:
        return Outcome(order, "INVALID_INPUT", "a payment reference is 1 to 128 characters", error_field="paymentReference")
    if order.status is not OrderStatus.PENDING_PAYMENT:
        if order.payment_reference == reference and order.paid_at is not None:
            return Outcome(order)  # a repeated notification of the same payment
        if order.status is OrderStatus.EXPIRED:
            return Outcome(order, "ORDER_EXPIRED", "the order expired before it was paid")
        return Outcome(order, "INVALID_STATE", f"an order that is {order.status.value} cannot be paid")
    if order.expires_at is not None and order.expires_at <= now:
        await _expire(uow, order, now)
        return Outcome(order, "ORDER_EXPIRED", "the order expired before it was paid")
    previous = order.status
    if not await move(uow.session, order, OrderStatus.PAID, actor=actor, reason=f"payment {reference}", at=now,
                      payment_reference=reference, paid_at=now, expires_at=None):
        await uow.session.refresh(order)
        return await pay(uow, order, reference, actor=actor, now=now)
    await tallies.release(uow.session, order, holds_only=True)  # paid: no longer held
    announce(uow, order, previous, now)
    # Fulfilment is durable work: queued in the transaction that made the order PAID.
    await jobs.request_fulfilment(uow, order.id, now=now)
    return Outcome(order)


async def cancel(uow: UnitOfWork, order: Order, *, actor: str, now: datetime, reason: str = "cancelled") -> Outcome:
    try:
        return await _end_holding(uow, order, OrderStatus.CANCELLED, actor=actor, now=now, reason=reason)
    except IllegalTransition as error:
        return Outcome(order, "INVALID_STATE", str(error))


async def reject(uow: UnitOfWork, order: Order, *, actor: str, now: datetime, reason: str) -> Outcome:
    """End a held order as REJECTED (a risk review said no), releasing its stock once."""
    try:
        return await _end_holding(uow, order, OrderStatus.REJECTED, actor=actor, now=now, reason=reason)
    except IllegalTransition as error:
        return Outcome(order, "INVALID_STATE", str(error))


async def _expire(uow: UnitOfWork, order: Order, now: datetime) -> Outcome:
    reason = "not reviewed in time" if order.status is OrderStatus.REVIEW else "not paid in time"
    return await _end_holding(uow, order, OrderStatus.EXPIRED, actor="system", now=now, reason=reason)


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
    lines = sorted(
        await uow.session.scalars(select(OrderLine).where(OrderLine.order_id == order.id)), key=lambda line: line.sku_id
    )
    # Buyers' counts, the coupon, quotas, then stock, each in its order: the order placeOrder takes them in.
    await tallies.release(uow.session, order)
    await redemption.release(uow.session, order, now)
    line_ids = [line.id for line in lines]
    quota_moved = await quotas.release(uow.session, line_ids, now)
    changed = sorted(set(await release(uow.session, line_ids)) | set(quota_moved) | {line.sku_id for line in lines})
    announce(uow, order, previous, now)
    stock_event(uow, changed, by_orders=True)
    return Outcome(order, changed_skus=changed)


def _due(now: datetime) -> list[ColumnElement[bool]]:
    return [Order.status.in_(tuple(HOLDS_RESERVATION)), Order.expires_at.is_not(None), Order.expires_at <= now]


async def due_orders(session: AsyncSession, now: datetime, limit: int = 100) -> list[int]:
    """Ids of unpaid orders whose time is up, oldest deadline first; a read, no locks."""
    return list(
        await session.scalars(select(Order.id).where(*_due(now)).order_by(Order.expires_at, Order.id).limit(limit))
    )


async def expire_if_due(uow: UnitOfWork, order_id: int, now: datetime) -> bool:
    """Expire one order if it is still due; False when it was not (paid, cancelled, or
    being changed by another transaction right now, which settles it either way).

    One order per transaction: a sweep never holds the stock rows of many orders at once,
    so it cannot deadlock with buyers or with the sweep of another process.
    """
    order = await uow.session.scalar(
        select(Order).where(Order.id == order_id, *_due(now)).with_for_update(skip_locked=True)
    )
    if order is None:
        return False
    return (await _expire(uow, order, now)).error_code is None


async def channel_code(uow: UnitOfWork, order: Order) -> str:
    return (await uow.session.scalar(select(Channel.code).where(Channel.id == order.channel_id))) or ""
