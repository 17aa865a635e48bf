"""An operator's decision on a marketplace refund, and its report back to the marketplace.

A refund the buyer asked for after delivery is a Refund on the order, REQUESTED
(services/marketplaces/refunds.py). An operator agrees to it or refuses it, once: the
Refund moves REQUESTED -> AGREED or REFUSED in one conditional UPDATE, so of two operators
deciding at once one wins and the other is told it was decided. In the same transaction:

- agreeing refunds the order (DELIVERED or PARTIALLY_DELIVERED -> REFUNDED) and posts the
  reversal of each delivered line on the ledger, as any refund of a line does
  (services/fulfilment/hooks.py); the marketplace, which holds the buyer's money, returns it;
- the decision's report is queued on the durable job queue (one job per Refund).

The job tells the marketplace through its adapter with no transaction open, then records
the answer on the trade's record: REPORTED, a retry on SCHEDULE, or FAILED after the last
attempt or at once when the marketplace refuses for good. A decision sent twice counts once
there (the adapter takes "already decided" as told).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.money import Money
from domain.orders import OrderStatus
from marketplaces.base import RefundDecision
from models import MarketplaceOrder, Order, OrderLine, Refund
from services.core import jobs
from services.core.database import rows_changed
from services.core.unit_of_work import UnitOfWork
from services.core.worker import Handler, JobRun
from services.fulfilment import hooks
from services.marketplace_events.states import (
    AGREED,
    DECISION,
    PENDING,
    REFUSED,
    REPORT_FAILED,
    REPORTED,
    REQUESTED,
    decision_key,
)
from services.marketplaces.connections import Markets
from services.marketplaces.reports import attempt, channel_code
from services.orders.events import move
from services.orders.lifecycle import announce

log = logging.getLogger("quanyi.marketplaces")

SCHEDULE: tuple[float, ...] = (5, 30, 120, 600, 1800, 3600, 7200)  # seconds before each retry
KEY_PREFIX = "marketplace:"  # the keys of marketplace refunds (services/marketplaces/refunds.py)
_REFUNDABLE = (OrderStatus.DELIVERED, OrderStatus.PARTIALLY_DELIVERED)


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Decided:
    refund: Refund | None
    error_code: str | None = None
    message: str = ""


async def resolve(uow: UnitOfWork, refund_id: int, *, agree: bool, reason: str, actor: str, now: datetime) -> Decided:
    """Agree to or refuse the marketplace refund `refund_id` (our Refund's id), once."""
    session = uow.session
    refund = await session.scalar(select(Refund).where(Refund.id == refund_id, Refund.key.startswith(KEY_PREFIX)))
    if refund is None:
        return Decided(None, "NOT_FOUND", "no marketplace refund with this id")
    record = await session.scalar(
        select(MarketplaceOrder).where(MarketplaceOrder.order_id == refund.order_id).with_for_update()
        .execution_options(populate_existing=True))
    order = await session.scalar(select(Order).where(Order.id == refund.order_id).with_for_update()
                                 .execution_options(populate_existing=True))
    if record is None or order is None:
        return Decided(None, "NOT_FOUND", "no marketplace refund with this id")
    if refund.status != REQUESTED:
        return Decided(None, "INVALID_STATE", f"the refund was {refund.status.lower()} already")
    if agree and order.status not in _REFUNDABLE:
        return Decided(None, "INVALID_STATE", "only a delivered order's refund can be agreed to; its fulfilment is not over")
    decided = await session.execute(
        update(Refund).where(Refund.id == refund.id, Refund.status == REQUESTED)
        .values(status=AGREED if agree else REFUSED).execution_options(synchronize_session=False))
    if rows_changed(decided) != 1:
        return Decided(None, "INVALID_STATE", "the refund was decided already")
    why = reason or ("agreed" if agree else "refused")
    if agree:
        previous = order.status
        if await move(session, order, OrderStatus.REFUNDED, actor=actor,
                      reason=f"marketplace refund {refund.reference} agreed: {why}"[:500], at=now):
            lines = await session.scalars(select(OrderLine.id).where(
                OrderLine.order_id == order.id, OrderLine.outcome == "DELIVERED").order_by(OrderLine.id))
            for line_id in list(lines):
                await hooks.line_refunded(session, line_id, now)
            announce(uow, order, previous, now)
    await session.execute(
        update(MarketplaceOrder).where(MarketplaceOrder.id == record.id)
        .values(refund_status=AGREED if agree else REFUSED, refund_report_status=PENDING, refund_report_attempts=0,
                refund_report_error=None, updated_at=now).execution_options(synchronize_session=False))
    await jobs.enqueue(session, DECISION, decision_key(refund.id), now=now,
                       payload={"refund": refund.id, "record": record.id, "agree": agree, "reason": why[:200]})
    await session.refresh(refund)
    log.info("marketplace refund %s of order %s %s by %s", refund.reference, order.number,
             "agreed" if agree else "refused", actor)
    return Decided(refund)


class DecisionReporter:
    def __init__(self, markets: Markets, *, schedule: Sequence[float] = SCHEDULE,
                 clock: Callable[[], datetime] = _now) -> None:
        self._markets, self._schedule, self._clock = markets, tuple(schedule), clock

    def handlers(self) -> dict[str, Handler]:
        return {DECISION: self.report}

    async def report(self, run: JobRun) -> None:
        payload = run.job.payload
        refund_id, record_id = int(payload["refund"]), int(payload["record"])  # type: ignore[call-overload]
        async with run.uow() as uow:
            now = self._clock()
            record = await uow.session.get(MarketplaceOrder, record_id)
            refund = await uow.session.get(Refund, refund_id)
            found = None
            if record is not None and refund is not None and record.refund_report_status == PENDING:
                found = await self._markets.connection(uow.session, channel=await channel_code(uow.session, record.channel_id))
            if record is None or refund is None or record.refund_report_status != PENDING or found is None:
                await run.done(uow, now)  # reported already, or nothing left to report it to
                return
            _, adapter = found
            decision = RefundDecision(refund_id=refund.reference or "", tid=record.tid, agree=bool(payload["agree"]),
                                      amount=Money(refund.amount_fen, refund.currency), reason=str(payload["reason"]))
            attempts = record.refund_report_attempts + 1
        error, final = await attempt(adapter.decide_refund(decision))
        async with run.uow() as uow:
            now = self._clock()
            if error is None:
                await _settle(uow.session, record_id, REPORTED, now, attempts, None)
                log.info("marketplace refund %s: decision reported (attempt %d)", decision.refund_id, attempts)
                await run.done(uow, now)
                return
            log.warning("marketplace refund %s: decision report attempt %d failed: %s", decision.refund_id, attempts, error)
            if not final and attempts <= len(self._schedule):
                await _settle(uow.session, record_id, PENDING, now, attempts, error)
                await run.later(uow, now, self._schedule[attempts - 1] * random.uniform(0.8, 1.2))
                return
            await _settle(uow.session, record_id, REPORT_FAILED, now, attempts, error)
            await run.done(uow, now)


async def _settle(session: AsyncSession, record_id: int, status: str, now: datetime, attempts: int,
                  error: str | None) -> None:
    """Move the decision's report on, only while it is PENDING."""
    await session.execute(
        update(MarketplaceOrder)
        .where(MarketplaceOrder.id == record_id, MarketplaceOrder.refund_report_status == PENDING)
        .values(refund_report_status=status, refund_report_attempts=attempts, updated_at=now,
                refund_report_error=error[:300] if error else None)
        .execution_options(synchronize_session=False))
