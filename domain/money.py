"""Exact money: integer fen in storage, Decimal in Python, decimal strings on the wire."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

# Minor units per major unit for the currencies we price in.
_MINOR_DIGITS = {"CNY": 2, "USD": 2, "HKD": 2, "EUR": 2, "JPY": 0}


class MoneyError(ValueError):
    pass


def minor_digits(currency: str) -> int:
    try:
        return _MINOR_DIGITS[currency]
    except KeyError:
        raise MoneyError(f"unsupported currency {currency!r}") from None


@dataclass(frozen=True, slots=True)
class Money:
    """An amount in a currency, held as integer minor units (fen for CNY)."""

    minor: int
    currency: str = "CNY"

    def __post_init__(self) -> None:
        if not isinstance(self.minor, int) or isinstance(self.minor, bool):
            raise MoneyError("money is held in integer minor units")
        minor_digits(self.currency)

    @classmethod
    def of(cls, amount: str | int | Decimal, currency: str = "CNY") -> Money:
        """Parse a decimal amount; more precision than the currency has is an error."""
        if isinstance(amount, float):
            raise MoneyError("money is never built from a float")
        try:
            value = Decimal(amount)
        except InvalidOperation:
            raise MoneyError(f"not a decimal amount: {amount!r}") from None
        if not value.is_finite():
            raise MoneyError(f"not a finite amount: {amount!r}")
        scaled = value.scaleb(minor_digits(currency))
        if scaled != scaled.to_integral_value():
            raise MoneyError(f"{amount} has more decimals than {currency} allows")
        return cls(int(scaled), currency)

    @property
    def amount(self) -> Decimal:
        digits = minor_digits(self.currency)
        return Decimal(self.minor).scaleb(-digits).quantize(Decimal(1).scaleb(-digits))

    def _same(self, other: Money) -> None:
        if other.currency != self.currency:
            raise MoneyError(f"cannot combine {self.currency} with {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.minor + other.minor, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.minor - other.minor, self.currency)

    def __mul__(self, quantity: int) -> Money:
        if not isinstance(quantity, int) or isinstance(quantity, bool):
            raise MoneyError("money is multiplied by whole quantities only")
        return Money(self.minor * quantity, self.currency)

    __rmul__ = __mul__

    def apply_rate(self, rate: Decimal) -> Money:
        """A share of this amount (commission, discount), rounded half-up to the fen."""
        share = (Decimal(self.minor) * rate).quantize(Decimal(1), rounding=ROUND_HALF_UP)
        return Money(int(share), self.currency)

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"
