"""An operator's decision on an order the risk check held for review."""

from __future__ import annotations

from datetime import datetime, timedelta

from domain.orders import OrderStatus
from domain.risk import Decision
from models import Order
from services.core.unit_of_work import UnitOfWork
from services.orders.events import move
from services.orders.lifecycle import Outcome, announce, reject
from services.risk.labels import label_order


async def review_order(
    uow: UnitOfWork, order: Order, decision: Decision, note: str | None, *, actor: str, now: datetime, ttl: timedelta
) -> Outcome:
    """PASS: on to PENDING_PAYMENT with a fresh payment deadline. REJECT: REJECTED, stock and
    quota released exactly once. The caller holds the order's row lock."""
    note = (note or "").strip()
    if len(note) > 400:
        return Outcome(order, "INVALID_INPUT", "a note is at most 400 characters", error_field="note")
    if decision is Decision.REVIEW:
        return Outcome(order, "INVALID_DECISION", "decide PASS (approve) or REJECT", error_field="decision")
    if order.status is not OrderStatus.REVIEW:
        return Outcome(order, "INVALID_STATE", f"the order is {order.status.value}, not waiting for review")
    suffix = f": {note}" if note else ""
    if decision is Decision.REJECT:
        outcome = await reject(uow, order, actor=actor, now=now, reason=f"rejected on review{suffix}")
        if outcome.error_code is None:
            await _learn(uow, order, fraud=True, actor=actor, now=now)
        return outcome
    if not await move(uow.session, order, OrderStatus.PENDING_PAYMENT, actor=actor, reason=f"approved on review{suffix}",
                      at=now, expires_at=now + ttl):
        await uow.session.refresh(order)
        return Outcome(order, "INVALID_STATE", f"the order is already {order.status.value}")
    announce(uow, order, OrderStatus.REVIEW, now)
    await _learn(uow, order, fraud=False, actor=actor, now=now)
    return Outcome(order)


async def _learn(uow: UnitOfWork, order: Order, *, fraud: bool, actor: str, now: datetime) -> None:
    """The decision is what the attempt turned out to be: the risk model learns from it."""
    await label_order(uow.session, order.id, fraud=fraud, source="REVIEW", actor=actor, now=now)
