"""What the sales figures count, and the time buckets they are grouped by. No I/O."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal

from domain.orders import OrderStatus

S = OrderStatus

# Orders whose money we hold: revenue. A FAILED order is paid and waits for a retry or a
# refund, so it counts until the refund happens.
SALE = frozenset({S.PAID, S.FULFILLING, S.DELIVERED, S.PARTIALLY_DELIVERED, S.FAILED})
# Money paid and given back: reported as refunds, never as revenue.
REFUND = S.REFUNDED
# Orders still open or sold: what buyers asked for, for live "top SKUs" figures.
DEMAND = SALE | {S.PENDING_RISK, S.REVIEW, S.PENDING_PAYMENT}
# Attempts the risk check stopped are counted from their REJECT verdicts: they create no order.

# Sums that mix currencies mean nothing; figures without a channel are in this one.
HOME_CURRENCY = "CNY"

MAX_BUCKETS = 1_000

CONVERSION_PLACES = Decimal("0.0001")

# A SKU with this many sellable units or fewer is running low (the dashboard's figure, and `stock.low`).
LOW_STOCK_UNITS = 10


class TimeBucket(enum.Enum):
    MINUTE = "MINUTE"
    HOUR = "HOUR"
    DAY = "DAY"

    @property
    def size(self) -> timedelta:
        return _SIZES[self]


_SIZES = {TimeBucket.MINUTE: timedelta(minutes=1), TimeBucket.HOUR: timedelta(hours=1), TimeBucket.DAY: timedelta(days=1)}


class AnalyticsInputError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field, self.message = field, message


@dataclass(frozen=True, slots=True)
class Period:
    """A half-open range of placement times, [start, end).

    Buckets are aligned in the UTC offset of `start`: a period given from
    2026-01-01T00:00:00+08:00 has days that begin at midnight in Beijing.
    """

    start: datetime
    end: datetime

    @classmethod
    def of(cls, start: datetime, end: datetime) -> Period:
        for field, moment in (("from", start), ("to", end)):
            offset = moment.utcoffset()
            if offset is None:
                raise AnalyticsInputError(field, "give a time zone, e.g. 2026-01-01T00:00:00+08:00")
            if offset % timedelta(minutes=1):
                raise AnalyticsInputError(field, "a UTC offset is a whole number of minutes")
            try:
                moment.astimezone(UTC)
            except OverflowError:
                raise AnalyticsInputError(field, "out of range") from None
        if start >= end:
            raise AnalyticsInputError("from", "`from` must be before `to`")
        return cls(start, end)

    @property
    def zone(self) -> timezone:
        offset = self.start.utcoffset()
        assert offset is not None  # checked in of()
        return timezone(offset)

    @property
    def offset_minutes(self) -> int:
        return int(self.zone.utcoffset(None) // timedelta(minutes=1))

    def buckets(self, bucket: TimeBucket) -> list[datetime]:
        """The start of every bucket the period touches; at most MAX_BUCKETS."""
        first = floor(self.start.astimezone(self.zone), bucket)
        count = -((first - self.end) // bucket.size)  # ceiling division of timedeltas
        if count > MAX_BUCKETS:
            raise AnalyticsInputError(
                "bucket", f"{count} {bucket.value.lower()} buckets; ask for at most {MAX_BUCKETS}"
            )
        return [first + bucket.size * i for i in range(count)]


def floor(moment: datetime, bucket: TimeBucket) -> datetime:
    """The start of the bucket holding `moment`, in `moment`'s own offset."""
    moment = moment.replace(second=0, microsecond=0)
    if bucket is TimeBucket.MINUTE:
        return moment
    moment = moment.replace(minute=0)
    return moment if bucket is TimeBucket.HOUR else moment.replace(hour=0)


def ratio(part: int, whole: int) -> Decimal | None:
    """part / whole to four places, half up; None when there is nothing to divide by."""
    if whole == 0:
        return None
    return (Decimal(part) / Decimal(whole)).quantize(CONVERSION_PLACES, rounding=ROUND_HALF_UP)
