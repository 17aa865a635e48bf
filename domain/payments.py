"""Payments an order cannot use: why, in the words the payer's refund carries. No I/O.

A payment that arrives for an order that can no longer take it (expired, cancelled,
rejected, held for review) or that was paid with another payment is not turned away: the
money has moved. It is owed back to the payer, whatever the order's status.
"""

from __future__ import annotations

from domain.orders import OrderStatus

S = OrderStatus

WHY_UNUSABLE: dict[OrderStatus, str] = {
    S.PENDING_RISK: "the order had not passed its risk check",
    S.REVIEW: "the order is held for risk review",
    S.REJECTED: "the order was rejected on review",
    S.CANCELLED: "the order was cancelled",
    S.EXPIRED: "the order expired before it was paid",
}
# Every other status is past payment: the order took another payment before this one.
PAID_OTHERWISE = "the order was already paid with another payment"

MAX_REFERENCE = 128  # characters of a payment reference


def why_unusable(status: OrderStatus) -> str:
    """Why a payment that arrives for an order in `status` cannot pay it."""
    return WHY_UNUSABLE.get(status, PAID_OTHERWISE)


def returned(reason: str) -> str:
    """The message a payer's system gets for a payment that will be returned."""
    return f"{reason}: the payment will be returned"
