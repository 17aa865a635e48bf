"""What follows an order's outcome, each a job of its own: sending a line's codes on one
channel (DELIVER), telling the buyer how the order ended on a channel that calls out, SMS or
email (NOTIFY; the inbox notice is written with the outcome), handing a refund to the payment
provider (REFUND)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.money import Money
from domain.orders import OrderStatus
from models import Order, Refund
from services.core import jobs
from services.core.database import Database
from services.core.secret_box import SecretBox
from services.core.worker import Handler, JobRun
from services.fulfilment import delivery
from services.fulfilment.senders import Message, Sender
from services.payments import refunds


class Followups:
    def __init__(self, db: Database, senders: Sequence[Sender], box: SecretBox, provider_refunds: refunds.Refunds,
                 clock: Callable[[], datetime], refund_check_seconds: float = 600.0) -> None:
        self._db, self._box, self._refunds, self._clock = db, box, provider_refunds, clock
        self._refund_check = refund_check_seconds
        self._by_channel = {sender.channel: sender for sender in senders}

    def handlers(self) -> dict[str, Handler]:
        return {jobs.DELIVER: self.deliver, jobs.NOTIFY: self.notify, jobs.REFUND: self.refund}

    async def deliver(self, run: JobRun) -> None:
        line_id, channel = int(run.job.payload["line"]), str(run.job.payload["channel"])  # type: ignore[call-overload]
        try:
            async with run.uow() as uow:
                now = self._clock()
                await delivery.deliver(uow.session, self._box, self._by_channel, line_id, channel, now)
                await run.done(uow, now)
        except jobs.LeaseLost:
            raise
        except Exception as error:
            async with self._db.sessions() as session, session.begin():
                await delivery.record_delivery(session, line_id, channel, delivery.FAILED, type(error).__name__,
                                               self._clock())
            raise

    async def notify(self, run: JobRun) -> None:
        sender = self._by_channel.get(str(run.job.payload.get("channel")))
        async with run.uow() as uow:
            now = self._clock()
            order = await uow.session.get(Order, run.job.order_id or 0)
            if order is not None and sender is not None:
                await sender.send(uow.session, await notice(uow.session, order))
            await run.done(uow, now)

    async def refund(self, run: JobRun) -> None:
        # The provider is called outside any transaction (it may take seconds, and its refund
        # notification may arrive before its answer); what it answered is written after.
        async with self._db.fresh_sessions() as session:
            refund = await session.get(Refund, int(run.job.payload["refund"]))  # type: ignore[call-overload]
            order = await session.get(Order, refund.order_id) if refund else None
        status = None
        if refund is not None and order is not None:
            reference = run.job.payload.get("reference")
            paid_with = str(reference) if reference else None
            if refund.status == refunds.REQUESTED:
                status = await self._refunds.request(refund, order.number, paid_with)
            elif refund.status == refunds.PROCESSING:
                status = await self._refunds.check(refund, order.number, paid_with)
        async with run.uow() as uow:
            now = self._clock()
            if status is not None and refund is not None:
                await refunds.advance(uow.session, refund.id, status)
            current = await uow.session.scalar(select(Refund.status).where(Refund.id == refund.id)) if refund else None
            if current == refunds.PROCESSING:
                # The provider's notification settles it; if it never comes, ask again later.
                await run.later(uow, now, self._refund_check)
            else:
                await run.done(uow, now)


async def notice(session: AsyncSession, order: Order) -> Message:
    """What the buyer is told about the order's outcome."""
    if order.status is OrderStatus.DELIVERED:
        return delivered_notice(order)
    paid_back = sum(refund.amount_fen for refund in await refunds.of_order(session, order.id))
    subject = f"Order {order.number}: refund of {Money(paid_back, order.currency)}"
    body = ("We could not deliver this order and are refunding it." if order.status is OrderStatus.REFUNDED
            else "Part of this order could not be delivered and is being refunded.")
    return Message(order.id, order.number, None, subject, body, phone=order.buyer_phone, email=order.buyer_email)


def delivered_notice(order: Order) -> Message:
    """What the buyer is told when everything was delivered."""
    return Message(order.id, order.number, None, f"Order {order.number} delivered",
                   "Everything you ordered has been delivered.", phone=order.buyer_phone, email=order.buyer_email)
