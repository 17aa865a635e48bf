"""What a channel may be set to: its currency, commission and settlement time zone. Pure."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from domain.catalog_input import Checker
from domain.money import MoneyError, minor_digits


def check_currency(check: Checker, value: Any) -> str:
    currency = value.strip().upper() if isinstance(value, str) else ""
    try:
        minor_digits(currency)
    except MoneyError:
        check.add("currency", f"an ISO 4217 code we price in, e.g. CNY (not {value!r})", "UNSUPPORTED_CURRENCY")
        return ""
    return currency


def commission_bp(check: Checker, rate: Any) -> int:
    """A commission rate (0.05 is 5%) as whole basis points: at most four decimals, 0 to 1."""
    if rate is None:
        return 0
    try:
        value = Decimal(str(rate)) if not isinstance(rate, Decimal) else rate
        points = value.scaleb(4)
    except (InvalidOperation, ValueError):
        points = None
    if points is None or not points.is_finite() or points != points.to_integral_value():
        check.add("commissionRate", "a fraction with at most four decimals, e.g. 0.05 for 5%", "INVALID_RATE")
        return 0
    if not 0 <= points <= 10_000:
        check.add("commissionRate", "from 0 to 1", "INVALID_RATE")
        return 0
    return int(points)


def rate_of(points: int) -> Decimal:
    """Basis points as the fraction clients read: 500 -> 0.05, 0 -> 0."""
    return Decimal(points).scaleb(-4).normalize()


def check_time_zone(check: Checker, value: Any) -> str:
    name = value.strip() if isinstance(value, str) else ""
    try:
        if not name or len(name) > 64 or not name.isascii() or name.startswith(("/", ".")) or ".." in name:
            raise ZoneInfoNotFoundError(name)
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        check.add("settlementTimeZone", "an IANA time zone, e.g. Asia/Shanghai", "INVALID_TIME_ZONE")
        return ""
    return name
