"""A provider's verified notification, applied once: a payment pays its order (or is owed
back, and so refunded through the provider), a refund's outcome is recorded.

A payment notification is applied only if it matches the payment we started: the same
order, the account's app id and merchant, the order's currency and its total in fen, to
the fen. One that does not is refused and recorded (payment_refusal, once per notification
and reason) for an operator: the provider keeps retrying it, and nothing else changes.
The provider's transaction id is the notification's identity (payment_notification), so a
retry, a duplicate or a replay of an applied notification changes nothing, however many
arrive at once: the order row is locked, and the id's unique row decides between them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from models import Order, Payment, PaymentAccount, PaymentNotification, PaymentRefusal, Refund
from providers.base import PaymentNotice, RefundNotice, RefundState, TradeState
from services.core.unit_of_work import UnitOfWork
from services.payments import receipts, refunds

STARTED, PAID, OWED_BACK = "STARTED", "PAID", "OWED_BACK"  # a Payment's status


class Result(enum.Enum):
    PAID = "paid"
    OWED_BACK = "owed_back"  # accepted; the order cannot take it, so it is refunded
    DUPLICATE = "duplicate"
    NOTHING = "nothing"  # genuine, but says nothing to apply (not paid yet, closed)
    REFUND_SETTLED = "refund_settled"
    REFUSED = "refused"


@dataclass(frozen=True, slots=True)
class Handled:
    result: Result
    code: str = ""
    message: str = ""

    @property
    def accepted(self) -> bool:
        return self.result is not Result.REFUSED


def notification_id(notice: PaymentNotice) -> str:
    return f"{notice.provider.value.lower()}:{notice.transaction_id}"[:128]


async def apply_payment(uow: UnitOfWork, notice: PaymentNotice, *, now: datetime) -> Handled:
    if notice.state is not TradeState.PAID:
        return Handled(Result.NOTHING)
    session = uow.session
    key = notification_id(notice)
    if await session.scalar(select(PaymentNotification.id).where(PaymentNotification.notification_id == key)):
        return Handled(Result.DUPLICATE)
    # Locked: concurrent deliveries for one order, and its cancel or expiry, queue here.
    order = await session.scalar(select(Order).where(Order.number == notice.order_number).with_for_update()
                                 .execution_options(populate_existing=True))
    if order is None:
        return await _refuse(uow, notice, "UNKNOWN_ORDER", "no such order", now)
    payment = await session.scalar(select(Payment).where(Payment.order_id == order.id,
                                                         Payment.provider == notice.provider.value))
    account = await session.get(PaymentAccount, payment.account_id) if payment is not None else None
    if payment is None or account is None:
        return await _refuse(uow, notice, "UNKNOWN_PAYMENT", "no payment of this order was started here", now)
    if (notice.app_id, notice.merchant_id) != (account.app_id, account.merchant_id):
        return await _refuse(uow, notice, "WRONG_ACCOUNT", "another app's or merchant's payment", now)
    if notice.currency != order.currency or notice.amount_fen != order.total_fen or notice.amount_fen != payment.amount_fen:
        return await _refuse(uow, notice, "AMOUNT_MISMATCH", "the amount or currency is not the order's total", now)
    actor = f"{notice.provider.value.lower()}:{notice.transaction_id}"[:120]
    receipt = await receipts.receive(uow, order, notice.transaction_id, amount_fen=notice.amount_fen, actor=actor,
                                     now=now)
    payment.status = OWED_BACK if receipt.owed_back else PAID
    payment.transaction_id, payment.paid_at = notice.transaction_id, notice.paid_at or now
    session.add(PaymentNotification(notification_id=key, order_id=order.id, received_at=now))
    try:
        await session.flush()
    except IntegrityError:
        await uow.rollback()  # a concurrent delivery of the same payment committed first
        return Handled(Result.DUPLICATE)
    if receipt.owed_back:
        return Handled(Result.OWED_BACK, receipts.REFUND_REQUESTED, receipt.outcome.message)
    return Handled(Result.PAID)


async def _refuse(uow: UnitOfWork, notice: PaymentNotice, code: str, message: str, now: datetime) -> Handled:
    session = uow.session
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    await session.execute(insert(PaymentRefusal).values(
        key=f"{notification_id(notice)}:{code}"[:200], provider=notice.provider.value, code=code,
        order_number=notice.order_number[:64], transaction_id=notice.transaction_id[:64],
        amount_fen=notice.amount_fen, currency=notice.currency[:3], received_at=now,
    ).on_conflict_do_nothing(index_elements=[PaymentRefusal.key]))
    return Handled(Result.REFUSED, code, message)


def refund_number(order_number: str, refund_id: int) -> str:
    """Our number of a refund at the provider (out_refund_no, out_request_no)."""
    return f"{order_number}R{refund_id}"


async def apply_refund(uow: UnitOfWork, notice: RefundNotice, *, now: datetime) -> Handled:
    order_number, _, refund_id = notice.refund_number.rpartition("R")
    session = uow.session
    refund = await session.get(Refund, int(refund_id)) if refund_id.isdigit() and len(refund_id) < 12 else None
    order = await session.get(Order, refund.order_id) if refund is not None else None
    if refund is None or order is None or order.number != order_number or order.number != notice.order_number:
        return Handled(Result.REFUSED, "UNKNOWN_REFUND", "no such refund")
    payment = await session.scalar(select(Payment).where(Payment.order_id == order.id,
                                                         Payment.provider == notice.provider.value))
    account = await session.get(PaymentAccount, payment.account_id) if payment is not None else None
    if account is None or account.merchant_id != notice.merchant_id:
        return Handled(Result.REFUSED, "WRONG_ACCOUNT", "another merchant's refund")
    status = refunds.SUCCEEDED if notice.state is RefundState.SUCCEEDED else (
        refunds.FAILED if notice.state is RefundState.FAILED else refunds.PROCESSING)
    moved = await refunds.advance(session, refund.id, status)
    return Handled(Result.REFUND_SETTLED if moved else Result.DUPLICATE)
