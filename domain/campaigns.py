"""Campaigns and their coupons, as pure rules: how a code is spelled, what a campaign takes off
an order, and whether a coupon may apply. No I/O.

A campaign takes one of three discounts off the lines of its SKUs: a fixed amount off those
lines together, a percentage of them (with an optional cap), or a fixed price per unit. One
coupon per order, always (`PlaceOrderInput.couponCode` is one code): campaigns never stack, so
what an order may lose is bounded by one campaign's rules and budget.

Codes are typed by people, so one code has many spellings: lower case, full-width digits
from a Chinese keyboard, spaces or hyphens between groups, and the letters O, I and L where
the generated alphabet (Crockford's base 32, which leaves them out) has 0, 1 and 1. Every
spelling folds to one key before it is compared or hashed.
"""

from __future__ import annotations

import enum
import hashlib
import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from domain.limits import COUPON_LIMIT as COUPON_LIMIT  # one code for both kinds of cap
from domain.money import Money

COUPON_UNAVAILABLE = "COUPON_UNAVAILABLE"


# Crockford's base 32: no I, L, O or U, so nothing on a printed card reads two ways.
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
GENERATED_LENGTH = 16  # 80 bits: guessing one of a million live codes takes ~2^60 tries
MAX_CODE_INPUT = 64
MIN_PUBLIC_CODE, MAX_PUBLIC_CODE = 4, 32
_LOOK_ALIKES = str.maketrans({"O": "0", "I": "1", "L": "1"})
_SEPARATORS = re.compile(r"[\s\-_.]+")
_KEY = re.compile(r"[0-9A-Z]+")
MAX_GENERATE = 100_000


class Bearer(enum.Enum):
    """Who pays for the discount: it is booked as that party's marketing cost."""

    PLATFORM = "PLATFORM"
    CHANNEL = "CHANNEL"
    SUPPLIER = "SUPPLIER"


def code_key(text: str) -> str | None:
    """The one spelling of a coupon code, or None when `text` cannot be one.

    NFKC turns full-width letters and digits into ASCII; separators go; case folds; the
    look-alike letters become the digits the generated alphabet uses.
    """
    if not isinstance(text, str) or len(text) > MAX_CODE_INPUT:
        return None
    folded = _SEPARATORS.sub("", unicodedata.normalize("NFKC", text)).upper().translate(_LOOK_ALIKES)
    if not MIN_PUBLIC_CODE <= len(folded) <= MAX_CODE_INPUT or not folded.isascii() or not _KEY.fullmatch(folded):
        return None
    return folded


def code_digest(key: str) -> str:
    """What the database keeps of a code: SHA-256 of its key.

    A generated code carries 80 random bits, so its digest needs no secret key to be safe
    (like API keys); a public code is public anyway. The digest finds the code, and a copy
    of the database holds no code anyone could redeem.
    """
    return hashlib.sha256(b"coupon:" + key.encode()).hexdigest()


def generated_tag(key: str) -> str:
    """How an order records a generated code: a prefix of its digest, not redeemable but equal
    for equal codes. (A public code is recorded as the campaign spells it.)"""
    return "#" + code_digest(key)[:15]


def same_coupon(recorded: str | None, text: str | None) -> bool:
    """Whether an order that recorded `recorded` was placed with the coupon `text` (a retry)."""
    if recorded is None or text is None or not text.strip():
        return recorded is None and not (text and text.strip())
    key = code_key(text)
    if key is None:
        return False
    if recorded.startswith("#"):
        return generated_tag(key) == recorded
    return code_key(recorded) == key


def generate_code() -> str:
    """A fresh code, secrets-grade, printed in groups of four: `7KQ2-M9XD-…`."""
    raw = "".join(secrets.choice(ALPHABET) for _ in range(GENERATED_LENGTH))
    return "-".join(raw[i:i + 4] for i in range(0, GENERATED_LENGTH, 4))


@dataclass(frozen=True, slots=True)
class Discount:
    """One of: `amount_off`, `percent_off` (with `max_discount`), `price`."""

    amount_off: Money | None = None
    percent_off: int | None = None
    max_discount: Money | None = None
    price: Money | None = None


class CampaignError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field, self.message = field, message


def check_discount(discount: Discount) -> None:
    if discount.amount_off is not None and discount.amount_off.minor <= 0:
        raise CampaignError("amountOff", "an amount off is above zero")
    if discount.percent_off is not None and not 1 <= discount.percent_off <= 100:
        raise CampaignError("percentOff", "a percentage is 1 to 100")
    if discount.max_discount is not None:
        if discount.percent_off is None:
            raise CampaignError("maxDiscount", "a cap goes with a percentage")
        if discount.max_discount.minor <= 0:
            raise CampaignError("maxDiscount", "a cap is above zero")
    if discount.price is not None and discount.price.minor < 0:
        raise CampaignError("price", "a price is zero or more")
    given = [d for d in (discount.amount_off, discount.percent_off, discount.price) if d is not None]
    if len(given) != 1:
        raise CampaignError("amountOff", "give exactly one of amountOff, percentOff or price")


def check_public_code(text: str) -> str:
    """The key of an operator's public code; refuses one that folds badly or is too short to
    be a word people type (generated codes are for anything secret)."""
    key = code_key(text)
    if key is None or not MIN_PUBLIC_CODE <= len(key) <= MAX_PUBLIC_CODE:
        raise CampaignError("code", f"a code is {MIN_PUBLIC_CODE} to {MAX_PUBLIC_CODE} letters and digits")
    return key


@dataclass(frozen=True, slots=True)
class Window:
    starts_at: datetime | None
    ends_at: datetime | None

    def refusal(self, now: datetime) -> str | None:
        if self.starts_at is not None and now < self.starts_at:
            return "this coupon cannot be used yet"
        if self.ends_at is not None and now >= self.ends_at:
            return "this coupon has ended"
        return None


@dataclass(frozen=True, slots=True)
class PricedLine:
    sku_id: int
    quantity: int
    unit: Money
    floor: Money | None  # the SKU's price floor (控价), per unit


def line_discounts(discount: Discount, lines: list[PricedLine], eligible: set[int]) -> list[int]:
    """Fen off each line (0 for lines outside the campaign's SKUs), never more than a line costs.

    An amount off or a capped percentage is one figure for the eligible lines together,
    shared among them in proportion to their subtotals (largest remainder, so the shares add
    up to the figure exactly); a price is per unit.
    """
    gross = [line.unit.minor * line.quantity if line.sku_id in eligible else 0 for line in lines]
    if discount.price is not None:
        return [
            max(0, line.unit.minor - discount.price.minor) * line.quantity if line.sku_id in eligible else 0
            for line in lines
        ]
    subtotal = sum(gross)
    if discount.amount_off is not None:
        total = min(discount.amount_off.minor, subtotal)
    else:
        assert discount.percent_off is not None
        total = Money(subtotal).apply_rate(Decimal(discount.percent_off).scaleb(-2)).minor
        if discount.max_discount is not None:
            total = min(total, discount.max_discount.minor)
    return _shared(total, gross)


def _shared(total: int, weights: list[int]) -> list[int]:
    whole = sum(weights)
    if whole == 0 or total == 0:
        return [0] * len(weights)
    shares = [total * w // whole for w in weights]
    order = sorted(range(len(weights)), key=lambda i: (-(total * weights[i] % whole), i))
    for i in order[: total - sum(shares)]:
        shares[i] += 1
    return shares


def below_floor(lines: list[PricedLine], discounts: list[int]) -> int | None:
    """The index of the first line the discount takes below its price floor, or None."""
    for index, (line, off) in enumerate(zip(lines, discounts, strict=True)):
        if line.floor is not None and off and line.unit.minor * line.quantity - off < line.floor.minor * line.quantity:
            return index
    return None
