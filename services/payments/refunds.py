"""Refunds: recorded with the transition that decides them, paid back once.

An order paid from a B2B channel's prepaid balance is credited back at once, in the same
transaction, by the refunded lines' ledger postings (services/settlement/ledger.py). Any other order's refund is
recorded REQUESTED and handed to the payment provider through the `Refunds` protocol: a
payment taken through WeChat Pay or Alipay is refunded through its refund API
(services/payments/provider_refunds.py), PROCESSING until the provider says it is
SUCCEEDED (or FAILED, for an operator); any other payment stays REQUESTED for an operator
to pay back from the provider's console.

A payment the order cannot use (services/payments/receipts.py) is owed back the same way,
once per order and payment reference, and shown on the ledger as a liability until paid.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from domain.money import Money
from models import Order, Refund
from services.core import jobs
from services.settlement import ledger
from services.settlement.prepaid import prepaid_reference

log = logging.getLogger("quanyi.refunds")

CREDITED, REQUESTED = "CREDITED", "REQUESTED"
PROCESSING, SUCCEEDED, FAILED = "PROCESSING", "SUCCEEDED", "FAILED"
# A refund's status only moves forward: a provider's answer that arrives after its
# notification (or a duplicate notification) cannot take it back.
_BEFORE = {PROCESSING: (REQUESTED,), SUCCEEDED: (REQUESTED, PROCESSING), FAILED: (REQUESTED, PROCESSING)}


class Refunds(Protocol):
    async def request(self, refund: Refund, order_number: str, payment_reference: str | None) -> str | None:
        """Ask the payment provider to pay `refund` back; the refund's new status, or None to
        leave it REQUESTED; raise to be retried. Called outside any transaction."""
        ...

    async def check(self, refund: Refund, order_number: str, payment_reference: str | None) -> str | None:
        """How a refund sent before (PROCESSING) stands now: its new status, or None."""
        ...


class RecordedRefunds:
    """Leaves the refund REQUESTED for an operator: no provider refund API for this payment."""

    async def request(self, refund: Refund, order_number: str, payment_reference: str | None) -> str | None:
        log.info("refund %s of order %s recorded for the payment provider (%s fen)", refund.id, order_number,
                 refund.amount_fen)
        return None

    async def check(self, refund: Refund, order_number: str, payment_reference: str | None) -> str | None:
        return None


async def advance(session: AsyncSession, refund_id: int, status: str) -> bool:
    """Move a refund on to `status` if it has not gone past it; whether it moved."""
    moved = await session.execute(
        update(Refund).where(Refund.id == refund_id, Refund.status.in_(_BEFORE[status])).values(status=status)
    )
    return bool(moved.rowcount)  # type: ignore[attr-defined]


async def record(
    session: AsyncSession, order: Order, *, key: str, line_ids: Sequence[int], amount_fen: int, reason: str,
    now: datetime, reference: str | None = None,
) -> bool:
    """Write the refund once per `key`; False if it was written before.

    `reference` is the payment being refunded (default: the order's)."""
    paid_with = reference if reference is not None else order.payment_reference
    prepaid = paid_with == prepaid_reference(order)
    refund_id = await _insert(session, order, key=key, line_ids=line_ids, amount_fen=amount_fen, reason=reason,
                              status=CREDITED if prepaid else REQUESTED, reference=paid_with, now=now)
    if refund_id is None:
        return False
    if prepaid:
        # The refunded lines' ledger postings (services/settlement/ledger.py post_refund) return the
        # payment to the balance, in this same transaction.
        return True
    await _request(session, refund_id, order, paid_with, now)
    return True


def payment_key(order_id: int, reference: str) -> str:
    return f"payment:{order_id}:{reference}"


async def owed_payment(session: AsyncSession, order_id: int, reference: str) -> Refund | None:
    """The refund of a payment the order could not use, if that payment arrived before."""
    return await session.scalar(select(Refund).where(Refund.key == payment_key(order_id, reference)))


async def owe_payment(
    session: AsyncSession, order: Order, reference: str, amount_fen: int, *, reason: str, actor: str, now: datetime,
) -> Refund:
    """Record a payment `order` cannot use as money owed back to its payer: REQUESTED for the
    payment provider, and a liability on the ledger until it is paid. Once per order and
    reference, however often the payment is reported; the refund either way."""
    refund_id = await _insert(session, order, key=payment_key(order.id, reference), line_ids=(), amount_fen=amount_fen,
                              reason=reason, status=REQUESTED, reference=reference, now=now)
    if refund_id is not None:
        await ledger.post_unusable_payment(session, refund_id, order, Money(amount_fen, order.currency), now, actor)
        await _request(session, refund_id, order, reference, now)
    owed = await owed_payment(session, order.id, reference)
    assert owed is not None  # written now, or by the report of this payment that came first
    return owed


async def _insert(
    session: AsyncSession, order: Order, *, key: str, line_ids: Sequence[int], amount_fen: int, reason: str,
    status: str, reference: str | None, now: datetime,
) -> int | None:
    """The new refund's id, or None when `key` was recorded before (or is being recorded now)."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    return await session.scalar(
        insert(Refund)
        .values(key=key, order_id=order.id, line_ids=",".join(map(str, line_ids)), amount_fen=amount_fen,
                currency=order.currency, reason=reason[:500], status=status, reference=reference, created_at=now)
        .on_conflict_do_nothing(index_elements=[Refund.key])
        .returning(Refund.id)
    )


async def _request(session: AsyncSession, refund_id: int, order: Order, reference: str | None, now: datetime) -> None:
    """Queue the hand-over to the payment provider, in the refund's transaction."""
    await jobs.enqueue(session, jobs.REFUND, f"refund:{refund_id}", now=now, order_id=order.id,
                       payload={"refund": refund_id, "reference": reference})


async def of_order(session: AsyncSession, order_id: int) -> list[Refund]:
    return list(await session.scalars(select(Refund).where(Refund.order_id == order_id).order_by(Refund.id)))


async def of_orders(session: AsyncSession, order_ids: Sequence[int]) -> dict[int, list[Refund]]:
    """Each order's refunds, oldest first, in one read."""
    found: dict[int, list[Refund]] = {}
    for row in await session.scalars(select(Refund).where(Refund.order_id.in_(order_ids)).order_by(Refund.id)):
        found.setdefault(row.order_id, []).append(row)
    return found
