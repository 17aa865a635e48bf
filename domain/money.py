"""Exact money: integer fen in storage, Decimal in Python, decimal strings on the wire."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from decimal import ROUND_HALF_UP, Context, Decimal

# Minor units per major unit for the currencies we price in.
_MINOR_DIGITS = {"CNY": 2, "USD": 2, "HKD": 2, "EUR": 2, "JPY": 0}

# Amounts are stored in a BIGINT column of minor units.
MAX_MINOR = 2**63 - 1

# "9.90", "-3", "+0.5": ASCII digits only. Decimal() alone would also take "1e3",
# "1_000", " 9.90 " and non-ASCII digits, none of which a price field should mean.
_PLAIN_DECIMAL = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?")

# What a client may type as an amount (prices, bounds, top-ups, deposits): ASCII digits,
# an optional minus, at most two decimals. Stricter than _PLAIN_DECIMAL on purpose: no "+",
# no "9.900", so the text a client sends is the amount it means, to the fen.
_AMOUNT_TEXT = re.compile(r"-?[0-9]+(?:\.[0-9]{1,2})?")

# The largest amount an input may carry, far below what the BIGINT fen columns hold
# (MAX_MINOR, 92,233,720,368,547,758.07): an order's total (20 lines of 1,000 units) and
# the sums of the ledger stay storable whatever was accepted.
MAX_INPUT_MINOR = 10**12
MAX_INPUT_AMOUNT = Decimal(MAX_INPUT_MINOR).scaleb(-2)

AMOUNT_RULE = 'a decimal string of ASCII digits with at most two decimal places, such as "9.90"'

# Wide enough that the share of any storable amount at any sensible rate is exact before
# it is rounded once, to the fen.
_EXACT = Context(prec=100)


class MoneyError(ValueError):
    pass


def minor_digits(currency: str) -> int:
    try:
        return _MINOR_DIGITS[currency]
    except KeyError:
        raise MoneyError(f"unsupported currency {currency!r}") from None


def _decimal(amount: object) -> Decimal:
    """A finite Decimal from a plain decimal string, an int or a Decimal; nothing else."""
    if isinstance(amount, bool) or not isinstance(amount, str | int | Decimal):
        kind = "a float" if isinstance(amount, float) else type(amount).__name__
        raise MoneyError(f"money is never built from {kind}")
    if isinstance(amount, str) and not _PLAIN_DECIMAL.fullmatch(amount):
        raise MoneyError(f"not a decimal amount: {amount!r}")
    value = Decimal(amount)
    if not value.is_finite():
        raise MoneyError(f"not a finite amount: {amount!r}")
    return value


def parse_amount(text: str) -> Decimal:
    """An amount as a client writes it: "9.90", "10", "0.5", "-3.20"; nothing else.

    Whether a negative or zero amount makes sense is the field's rule, not this one.
    """
    if not _AMOUNT_TEXT.fullmatch(text):
        raise MoneyError(f"an amount is {AMOUNT_RULE}")
    value = Decimal(text)
    if value.is_zero() and value.is_signed():
        raise MoneyError("an amount of zero has no sign: write 0")
    if abs(value) > MAX_INPUT_AMOUNT:
        raise MoneyError(f"an amount is at most {MAX_INPUT_AMOUNT:,}")
    return value


@dataclass(frozen=True, slots=True)
class Money:
    """An amount in a currency, held as integer minor units (fen for CNY)."""

    minor: int
    currency: str = "CNY"

    def __post_init__(self) -> None:
        if not isinstance(self.minor, int) or isinstance(self.minor, bool):
            raise MoneyError("money is held in integer minor units")
        if abs(self.minor) > MAX_MINOR:
            raise MoneyError("amount is too large to store")
        minor_digits(self.currency)

    @classmethod
    def of(cls, amount: str | int | Decimal, currency: str = "CNY") -> Money:
        """Parse a decimal amount; more precision than the currency has is an error."""
        digits = minor_digits(currency)
        sign, figures, exponent = _decimal(amount).as_tuple()
        assert isinstance(exponent, int)  # finite, checked by _decimal
        # Integer arithmetic on the digits: exact whatever the Decimal context says.
        significant = "".join(map(str, figures)).rstrip("0")
        if not significant:
            return cls(0, currency)
        exponent += len(figures) - len(significant)  # trailing zeros are not precision
        if exponent + digits < 0:
            raise MoneyError(f"{amount} has more decimals than {currency} allows")
        if len(significant) + exponent + digits > len(str(MAX_MINOR)):
            raise MoneyError(f"{amount} is too large to store")
        minor = int(significant) * 10 ** (exponent + digits)
        return cls(-minor if sign else minor, currency)

    @property
    def amount(self) -> Decimal:
        """The amount with exactly the currency's decimals: Decimal("9.90"), never "9.9"."""
        return _amount(self.minor, minor_digits(self.currency))

    def _same(self, other: Money) -> None:
        if not isinstance(other, Money):
            raise MoneyError("money is combined with money only")
        if other.currency != self.currency:
            raise MoneyError(f"cannot combine {self.currency} with {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.minor + other.minor, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.minor - other.minor, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.minor, self.currency)

    def __mul__(self, quantity: int) -> Money:
        if not isinstance(quantity, int) or isinstance(quantity, bool):
            raise MoneyError("money is multiplied by whole quantities only")
        return Money(self.minor * quantity, self.currency)

    __rmul__ = __mul__

    def apply_rate(self, rate: Decimal) -> Money:
        """A share of this amount (commission, discount), rounded half-up to the fen.

        Half-up rounds ties away from zero, so the share of a reversal is exactly the
        negative of the share of the original amount.
        """
        if not isinstance(rate, Decimal) or not rate.is_finite():
            raise MoneyError("a rate is a finite Decimal, never a float")
        share = _EXACT.multiply(Decimal(self.minor), rate)
        fen = share.quantize(Decimal(1), rounding=ROUND_HALF_UP, context=_EXACT)
        return Money(int(fen), self.currency)

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"


@lru_cache(maxsize=4096)
def _amount(minor: int, digits: int) -> Decimal:
    # Read from its digits and exponent, exactly, whatever the Decimal context; kept, as a
    # Decimal is immutable and the same prices come back order after order.
    return Decimal(f"{minor}E-{digits}")
