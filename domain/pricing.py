"""The price a buyer pays, resolved on the server from the channel's rules.

Order of precedence for one unit: a promotion window open at the moment of purchase,
else the channel's standing price, else the SKU's base price. A B2B quantity tier
then applies when it is cheaper for the quantity bought. The result never goes below
the SKU's floor (控价) nor above its ceiling, whatever was stored.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from domain.money import Money, MoneyError


class PriceSource(Enum):
    BASE = "BASE"
    CHANNEL = "CHANNEL"
    WINDOW = "WINDOW"
    TIER = "TIER"


@dataclass(frozen=True, slots=True)
class ChannelPriceRule:
    """A channel's price for a SKU; with a window it is a promotion that opens and closes."""

    price: Money
    starts_at: datetime | None = None
    ends_at: datetime | None = None  # exclusive

    @property
    def is_window(self) -> bool:
        return self.starts_at is not None or self.ends_at is not None

    def open_at(self, moment: datetime) -> bool:
        if self.starts_at is not None and moment < self.starts_at:
            return False
        return self.ends_at is None or moment < self.ends_at


@dataclass(frozen=True, slots=True)
class QuantityTier:
    min_quantity: int
    price: Money


@dataclass(frozen=True, slots=True)
class PriceBounds:
    floor: Money | None = None
    ceiling: Money | None = None


@dataclass(frozen=True, slots=True)
class ResolvedPrice:
    unit: Money
    source: PriceSource

    def total(self, quantity: int) -> Money:
        return self.unit * quantity


def resolve_price(
    *,
    base: Money,
    rules: Iterable[ChannelPriceRule],
    tiers: Sequence[QuantityTier] = (),
    bounds: PriceBounds = PriceBounds(),
    quantity: int = 1,
    at: datetime,
    currency: str | None = None,
) -> ResolvedPrice:
    """The unit price for `quantity` units bought at `at`.

    `currency` is the channel's: a channel that sells in another currency than the
    SKU is priced in is a configuration error, not something to convert silently.
    """
    if quantity < 1:
        raise ValueError("quantity must be at least 1")
    if currency is not None and currency != base.currency:
        raise MoneyError(f"the channel sells in {currency}, the SKU is priced in {base.currency}")
    unit, source = base, PriceSource.BASE
    rules = list(rules)
    standing = [r for r in rules if not r.is_window]
    if standing:
        unit, source = standing[-1].price, PriceSource.CHANNEL
    open_windows = [r for r in rules if r.is_window and r.open_at(at)]
    if open_windows:
        # Overlapping promotions: the one that opened last is the one in force.
        latest = max(open_windows, key=lambda r: r.starts_at or datetime.min.replace(tzinfo=at.tzinfo))
        unit, source = latest.price, PriceSource.WINDOW
    tier = tier_for(tiers, quantity)
    if tier is not None and tier.price.minor < unit.minor:
        unit, source = tier.price, PriceSource.TIER
    return ResolvedPrice(unit=clamp(unit, bounds), source=source)


def tier_for(tiers: Sequence[QuantityTier], quantity: int) -> QuantityTier | None:
    reached = [t for t in tiers if t.min_quantity <= quantity]
    return max(reached, key=lambda t: t.min_quantity) if reached else None


def clamp(price: Money, bounds: PriceBounds) -> Money:
    if bounds.floor is not None and price.minor < bounds.floor.minor:
        return bounds.floor
    if bounds.ceiling is not None and price.minor > bounds.ceiling.minor:
        return bounds.ceiling
    return price


class PriceViolation(Enum):
    BELOW_PRICE_FLOOR = "BELOW_PRICE_FLOOR"
    ABOVE_PRICE_CEILING = "ABOVE_PRICE_CEILING"
    NOT_POSITIVE = "PRICE_NOT_POSITIVE"
    CURRENCY_MISMATCH = "CURRENCY_MISMATCH"
    EMPTY_WINDOW = "EMPTY_PRICE_WINDOW"
    INVERTED_BOUNDS = "FLOOR_ABOVE_CEILING"


def check_price(
    price: Money,
    bounds: PriceBounds,
    *,
    starts_at: datetime | None = None,
    ends_at: datetime | None = None,
) -> PriceViolation | None:
    """Why a channel price may not be set, or None when it may (控价)."""
    if price.minor <= 0:
        return PriceViolation.NOT_POSITIVE
    for bound in (bounds.floor, bounds.ceiling):
        if bound is not None and bound.currency != price.currency:
            return PriceViolation.CURRENCY_MISMATCH
    if bounds.floor is not None and price.minor < bounds.floor.minor:
        return PriceViolation.BELOW_PRICE_FLOOR
    if bounds.ceiling is not None and price.minor > bounds.ceiling.minor:
        return PriceViolation.ABOVE_PRICE_CEILING
    if starts_at is not None and ends_at is not None and ends_at <= starts_at:
        return PriceViolation.EMPTY_WINDOW
    return None


def check_bounds(bounds: PriceBounds) -> PriceViolation | None:
    """Why a floor and ceiling may not be set together, or None."""
    for bound in (bounds.floor, bounds.ceiling):
        if bound is not None and bound.minor <= 0:
            return PriceViolation.NOT_POSITIVE
    if bounds.floor is not None and bounds.ceiling is not None:
        if bounds.floor.currency != bounds.ceiling.currency:
            return PriceViolation.CURRENCY_MISMATCH
        if bounds.floor.minor > bounds.ceiling.minor:
            return PriceViolation.INVERTED_BOUNDS
    return None
