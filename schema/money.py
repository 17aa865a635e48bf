"""Money on the wire: a decimal string amount and its currency, never a float."""

from __future__ import annotations

from decimal import Decimal

import strawberry

from domain import money


@strawberry.type(description="An exact amount: `amount` is a decimal string such as \"9.90\".")
class Money:
    amount: Decimal
    currency: str

    @classmethod
    def of(cls, value: money.Money) -> Money:
        return cls(amount=value.amount, currency=value.currency)

    @classmethod
    def fen(cls, minor: int, currency: str) -> Money:
        return cls.of(money.Money(minor, currency))
