"""Refunds: recorded with the transition that decides them, paid back once.

An order paid from a B2B channel's prepaid balance is credited back at once, in the same
transaction, by the refunded lines' ledger postings (services/settlement/ledger.py). Any other order's refund is
recorded REQUESTED and handed to the payment provider through the `Refunds` protocol. The
default implementation only logs that it was requested: no provider refund API is wired
yet, so an operator pays it back from the provider's console.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from models import Order, Refund
from services.core import jobs
from services.settlement.prepaid import prepaid_reference

log = logging.getLogger("quanyi.refunds")

CREDITED, REQUESTED = "CREDITED", "REQUESTED"


class Refunds(Protocol):
    async def request(self, refund: Refund, order_number: str, payment_reference: str | None) -> None:
        """Ask the payment provider to pay `refund` back; raise to be retried."""
        ...


class RecordedRefunds:
    """Leaves the refund REQUESTED for an operator: there is no provider refund API here."""

    async def request(self, refund: Refund, order_number: str, payment_reference: str | None) -> None:
        log.info("refund %s of order %s recorded for the payment provider (%s fen)", refund.id, order_number,
                 refund.amount_fen)


async def record(
    session: AsyncSession, order: Order, *, key: str, line_ids: Sequence[int], amount_fen: int, reason: str,
    now: datetime, reference: str | None = None,
) -> bool:
    """Write the refund once per `key`; False if it was written before.

    `reference` is the payment being refunded (default: the order's)."""
    paid_with = reference if reference is not None else order.payment_reference
    prepaid = paid_with == prepaid_reference(order)
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    refund_id = await session.scalar(
        insert(Refund)
        .values(key=key, order_id=order.id, line_ids=",".join(map(str, line_ids)), amount_fen=amount_fen,
                currency=order.currency, reason=reason[:500], status=CREDITED if prepaid else REQUESTED, created_at=now)
        .on_conflict_do_nothing(index_elements=[Refund.key])
        .returning(Refund.id)
    )
    if refund_id is None:
        return False
    if prepaid:
        # The refunded lines' ledger postings (services/settlement/ledger.py post_refund) return the
        # payment to the balance, in this same transaction.
        return True
    await jobs.enqueue(session, jobs.REFUND, f"refund:{refund_id}", now=now, order_id=order.id,
                       payload={"refund": refund_id, "reference": paid_with})
    return True


async def of_order(session: AsyncSession, order_id: int) -> list[Refund]:
    return list(await session.scalars(select(Refund).where(Refund.order_id == order_id).order_by(Refund.id)))
