"""The price a buyer pays: windows that open and close, channel prices, tiers, price control."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.money import Money, MoneyError
from domain.pricing import (
    ChannelPriceRule,
    PriceBounds,
    PriceSource,
    PriceViolation,
    QuantityTier,
    check_price,
    resolve_price,
)

NOON = datetime(2026, 11, 11, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
BASE = Money.of("99.00")
STANDING = ChannelPriceRule(Money.of("95.00"))
DOUBLE_11 = ChannelPriceRule(Money.of("88.00"), starts_at=NOON, ends_at=NOON + 2 * HOUR)
FLASH = ChannelPriceRule(Money.of("79.90"), starts_at=NOON + HOUR, ends_at=NOON + 90 * timedelta(minutes=1))
TIERS = (QuantityTier(10, Money.of("90.00")), QuantityTier(100, Money.of("85.50")))


@pytest.mark.parametrize(
    ("case", "rules", "at", "quantity", "expected", "source"),
    [
        ("no channel rules: base price", [], NOON, 1, "99.00", PriceSource.BASE),
        ("standing channel price", [STANDING], NOON, 1, "95.00", PriceSource.CHANNEL),
        ("window not yet open", [STANDING, DOUBLE_11], NOON - timedelta(seconds=1), 1, "95.00", PriceSource.CHANNEL),
        ("window opens on the second", [STANDING, DOUBLE_11], NOON, 1, "88.00", PriceSource.WINDOW),
        ("window closes: end is exclusive", [STANDING, DOUBLE_11], NOON + 2 * HOUR, 1, "95.00", PriceSource.CHANNEL),
        ("window without standing price falls back to base", [DOUBLE_11], NOON + 3 * HOUR, 1, "99.00", PriceSource.BASE),
        ("overlapping windows: the later opening wins", [STANDING, DOUBLE_11, FLASH], NOON + HOUR, 1, "79.90", PriceSource.WINDOW),
        ("after the flash sale the outer window is back", [STANDING, DOUBLE_11, FLASH], NOON + 100 * timedelta(minutes=1), 1, "88.00", PriceSource.WINDOW),
        ("open-ended window", [ChannelPriceRule(Money.of("70.00"), starts_at=NOON)], NOON + 1000 * HOUR, 1, "70.00", PriceSource.WINDOW),
    ],
)
def test_windows_and_channel_prices(case, rules, at, quantity, expected, source) -> None:
    resolved = resolve_price(base=BASE, rules=rules, quantity=quantity, at=at)
    assert (resolved.unit, resolved.source) == (Money.of(expected), source), case


@pytest.mark.parametrize(
    ("quantity", "expected", "source"),
    [
        (1, "95.00", PriceSource.CHANNEL),
        (9, "95.00", PriceSource.CHANNEL),
        (10, "90.00", PriceSource.TIER),
        (99, "90.00", PriceSource.TIER),
        (100, "85.50", PriceSource.TIER),
        (5000, "85.50", PriceSource.TIER),
    ],
)
def test_b2b_quantity_tiers(quantity: int, expected: str, source: PriceSource) -> None:
    resolved = resolve_price(base=BASE, rules=[STANDING], tiers=TIERS, quantity=quantity, at=NOON)
    assert (resolved.unit, resolved.source) == (Money.of(expected), source)
    assert resolved.total(quantity) == Money.of(expected) * quantity


def test_a_promotion_cheaper_than_the_tier_keeps_the_promotion() -> None:
    resolved = resolve_price(base=BASE, rules=[STANDING, FLASH], tiers=TIERS, quantity=10, at=NOON + HOUR)
    assert (resolved.unit, resolved.source) == (Money.of("79.90"), PriceSource.WINDOW)


def test_a_stored_price_below_a_raised_floor_is_sold_at_the_floor() -> None:
    bounds = PriceBounds(floor=Money.of("92.00"))
    resolved = resolve_price(base=BASE, rules=[DOUBLE_11], bounds=bounds, at=NOON)
    assert resolved.unit == Money.of("92.00")


def test_a_stored_price_above_the_ceiling_is_sold_at_the_ceiling() -> None:
    resolved = resolve_price(base=BASE, rules=[], bounds=PriceBounds(ceiling=Money.of("98.00")), at=NOON)
    assert resolved.unit == Money.of("98.00")


def test_a_channel_in_another_currency_is_refused() -> None:
    with pytest.raises(MoneyError):
        resolve_price(base=BASE, rules=[], at=NOON, currency="USD")


def test_quantity_must_be_positive() -> None:
    with pytest.raises(ValueError):
        resolve_price(base=BASE, rules=[], at=NOON, quantity=0)


FLOOR_AND_CEILING = PriceBounds(floor=Money.of("90.00"), ceiling=Money.of("120.00"))


@pytest.mark.parametrize(
    ("price", "window", "violation"),
    [
        ("90.00", None, None),
        ("89.99", None, PriceViolation.BELOW_PRICE_FLOOR),
        ("120.00", None, None),
        ("120.01", None, PriceViolation.ABOVE_PRICE_CEILING),
        ("0.00", None, PriceViolation.NOT_POSITIVE),
        ("100.00", (NOON, NOON), PriceViolation.EMPTY_WINDOW),
        ("100.00", (NOON, NOON - HOUR), PriceViolation.EMPTY_WINDOW),
        ("100.00", (NOON, NOON + HOUR), None),
    ],
)
def test_price_control(price: str, window: tuple[datetime, datetime] | None, violation) -> None:
    starts_at, ends_at = window or (None, None)
    assert check_price(Money.of(price), FLOOR_AND_CEILING, starts_at=starts_at, ends_at=ends_at) == violation


def test_price_control_refuses_a_floor_in_another_currency() -> None:
    bounds = PriceBounds(floor=Money.of("10.00", "USD"))
    assert check_price(Money.of("100.00"), bounds) is PriceViolation.CURRENCY_MISMATCH
