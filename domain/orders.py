"""The order lifecycle as a pure transition table, and the rules of order input."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class OrderStatus(enum.Enum):
    PENDING_RISK = "PENDING_RISK"
    REVIEW = "REVIEW"
    REJECTED = "REJECTED"
    PENDING_PAYMENT = "PENDING_PAYMENT"
    PAID = "PAID"
    FULFILLING = "FULFILLING"
    DELIVERED = "DELIVERED"
    PARTIALLY_DELIVERED = "PARTIALLY_DELIVERED"
    CANCELLED = "CANCELLED"
    EXPIRED = "EXPIRED"
    FAILED = "FAILED"
    REFUNDED = "REFUNDED"


S = OrderStatus

# Every legal move. Anything else is refused, never applied silently.
TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    S.PENDING_RISK: frozenset({S.PENDING_PAYMENT, S.REVIEW, S.REJECTED}),
    S.REVIEW: frozenset({S.PENDING_PAYMENT, S.REJECTED, S.CANCELLED, S.EXPIRED}),
    S.PENDING_PAYMENT: frozenset({S.PAID, S.CANCELLED, S.EXPIRED}),
    S.PAID: frozenset({S.FULFILLING, S.REFUNDED}),
    S.FULFILLING: frozenset({S.DELIVERED, S.PARTIALLY_DELIVERED, S.FAILED, S.REFUNDED}),
    S.PARTIALLY_DELIVERED: frozenset({S.DELIVERED, S.REFUNDED}),
    S.FAILED: frozenset({S.REFUNDED, S.FULFILLING}),
    S.DELIVERED: frozenset({S.REFUNDED}),
    S.REJECTED: frozenset(),
    S.CANCELLED: frozenset(),
    S.EXPIRED: frozenset(),
    S.REFUNDED: frozenset(),
}

# Statuses in which the order holds stock that must be released if it ends.
HOLDS_RESERVATION = frozenset({S.PENDING_RISK, S.REVIEW, S.PENDING_PAYMENT})


class IllegalTransition(Exception):
    def __init__(self, current: OrderStatus, target: OrderStatus) -> None:
        super().__init__(f"an order that is {current.value} cannot become {target.value}")
        self.current, self.target = current, target


def can_move(current: OrderStatus, target: OrderStatus) -> bool:
    return target in TRANSITIONS[current]


def check_move(current: OrderStatus, target: OrderStatus) -> None:
    if not can_move(current, target):
        raise IllegalTransition(current, target)


@dataclass(frozen=True, slots=True)
class LineRequest:
    sku_id: int
    quantity: int


MAX_LINES = 20
MAX_QUANTITY = 1_000


class OrderInputError(ValueError):
    def __init__(self, field: str, message: str, code: str = "INVALID_INPUT") -> None:
        super().__init__(message)
        self.field, self.message, self.code = field, message, code


def check_lines(lines: list[LineRequest]) -> list[LineRequest]:
    """Lines merged by SKU (a buyer asking twice for one SKU means the sum)."""
    if not lines:
        raise OrderInputError("lines", "an order needs at least one line")
    if len(lines) > MAX_LINES:
        raise OrderInputError("lines", f"an order has at most {MAX_LINES} lines")
    merged: dict[int, int] = {}
    for index, line in enumerate(lines):
        if not 1 <= line.quantity <= MAX_QUANTITY or merged.get(line.sku_id, 0) + line.quantity > MAX_QUANTITY:
            raise OrderInputError(f"lines.{index}.quantity", f"quantity must be between 1 and {MAX_QUANTITY}")
        merged[line.sku_id] = merged.get(line.sku_id, 0) + line.quantity
    return [LineRequest(sku_id, quantity) for sku_id, quantity in merged.items()]
