"""A payment arrives for an order: it pays the order, or it is owed back. It is never lost.

Both ways money is reported in, the provider's webhook (services/payments/notifications.py)
and `payOrder`, come here with the order row locked (FOR UPDATE; on SQLite the write
transaction) in the caller's transaction. A cancel, an expiry or another payment of the same
order waits for that lock, so whichever comes first decides, and exactly one of "the order
is paid" and "the payment is owed back" happens for each payment:

1. A reference already owed back stays owed back: the same payment reported again (another
   notification of it, a retried payOrder) neither pays the order nor owes it twice, also
   when the order could take a payment by now (a review approved since).
2. Otherwise the order is paid (services/orders/lifecycle.py pay); paying again with the
   reference that paid it changes nothing.
3. If the order cannot take it (expired, also found due on the way; cancelled; rejected;
   held for review; paid with another payment), the payment is recorded as a Refund
   REQUESTED for its amount under its reference, with the ledger's liability and the job that
   hands it to the payment provider, in this same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from domain.payments import MAX_REFERENCE, returned, why_unusable
from models import Order, Refund
from services.core.unit_of_work import UnitOfWork
from services.orders import lifecycle
from services.payments import refunds

REFUND_REQUESTED = "REFUND_REQUESTED"
# What lifecycle.pay answers for an order that cannot take a payment; any other refusal
# (a malformed reference) means no payment was reported at all.
_CANNOT_TAKE = frozenset({"ORDER_EXPIRED", "INVALID_STATE"})


@dataclass(frozen=True, slots=True)
class Receipt:
    """How a payment ended: `outcome` as for lifecycle.pay (error REFUND_REQUESTED when the
    payment is owed back), and the refund that returns it, if it is."""

    outcome: lifecycle.Outcome
    refund: Refund | None = None

    @property
    def owed_back(self) -> bool:
        return self.refund is not None


async def receive(
    uow: UnitOfWork, order: Order, reference: str, *, amount_fen: int, actor: str, now: datetime
) -> Receipt:
    """Apply a payment of `amount_fen` (the order's currency) to `order`, locked by the caller."""
    session = uow.session
    reference = reference.strip()
    if 1 <= len(reference) <= MAX_REFERENCE:
        owed = await refunds.owed_payment(session, order.id, reference)
        if owed is not None:
            return _owed_back(order, owed)
    outcome = await lifecycle.pay(uow, order, reference, actor=actor, now=now)
    if outcome.error_code not in _CANNOT_TAKE:
        return Receipt(outcome)
    refund = await refunds.owe_payment(
        session, order, reference, amount_fen, reason=why_unusable(order.status), actor=actor, now=now,
    )
    return _owed_back(order, refund)


def _owed_back(order: Order, refund: Refund) -> Receipt:
    return Receipt(lifecycle.Outcome(order, REFUND_REQUESTED, returned(refund.reason)), refund)
