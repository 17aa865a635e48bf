"""Periods and buckets of the sales figures: aligned in the caller's offset, bounded in number."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from domain.analytics import MAX_BUCKETS, AnalyticsInputError, Period, TimeBucket, ratio

BEIJING = timezone(timedelta(hours=8))
KOLKATA = timezone(timedelta(hours=5, minutes=30))


def test_buckets_start_at_the_bucket_holding_from_and_cover_to() -> None:
    period = Period.of(datetime(2026, 1, 1, 9, 40, tzinfo=BEIJING), datetime(2026, 1, 1, 12, 0, tzinfo=BEIJING))

    assert [b.isoformat() for b in period.buckets(TimeBucket.HOUR)] == [
        "2026-01-01T09:00:00+08:00", "2026-01-01T10:00:00+08:00", "2026-01-01T11:00:00+08:00",
    ]


def test_days_begin_at_midnight_in_the_offset_of_from() -> None:
    period = Period.of(datetime(2026, 1, 1, tzinfo=KOLKATA), datetime(2026, 1, 2, 12, tzinfo=UTC))

    assert [b.isoformat() for b in period.buckets(TimeBucket.DAY)] == [
        "2026-01-01T00:00:00+05:30", "2026-01-02T00:00:00+05:30",
    ]
    assert period.offset_minutes == 330


def test_at_most_a_thousand_buckets() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)

    assert len(Period.of(start, start + timedelta(minutes=MAX_BUCKETS)).buckets(TimeBucket.MINUTE)) == MAX_BUCKETS
    with pytest.raises(AnalyticsInputError) as refused:
        Period.of(start, start + timedelta(minutes=MAX_BUCKETS, seconds=1)).buckets(TimeBucket.MINUTE)
    assert refused.value.field == "bucket"


@pytest.mark.parametrize(
    ("start", "end", "field"),
    [
        (datetime(2026, 1, 2, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC), "from"),
        (datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC), "from"),
        (datetime(2026, 1, 1), datetime(2026, 1, 2, tzinfo=UTC), "from"),
        (datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2), "to"),
        (datetime(2026, 1, 1, tzinfo=timezone(timedelta(seconds=30))), datetime(2026, 1, 2, tzinfo=UTC), "from"),
        (datetime.min.replace(tzinfo=timezone(timedelta(hours=8))), datetime(2026, 1, 2, tzinfo=UTC), "from"),
    ],
)
def test_a_period_needs_time_zones_and_to_after_from(start: datetime, end: datetime, field: str) -> None:
    with pytest.raises(AnalyticsInputError) as refused:
        Period.of(start, end)

    assert refused.value.field == field


def test_conversion_is_exact_to_four_places_and_absent_without_orders() -> None:
    assert ratio(1, 3) == Decimal("0.3333")
    assert ratio(2, 3) == Decimal("0.6667")
    assert ratio(3, 3) == Decimal("1.0000")
    assert ratio(0, 0) is None
