"""Membership subscriptions (会员订阅): periods, the renewal calendar, dunning, as pure rules.

A membership renews a direct top-up SKU every period through a payment agreement the buyer
signed once (WeChat Pay 委托代扣, Alipay 周期扣款). The calendar is fixed by the first
period: period n ends n periods after the start, whenever its charge went through. A
renewal is charged `RENEWAL_LEAD` before its period would end, the buyer is reminded
`REMINDER_LEAD` before that, and a declined charge is tried again after each delay of
`DUNNING` (the grace period); declined once more after the last, the membership lapses.
"""

from __future__ import annotations

import calendar
import enum
from datetime import datetime, timedelta


class Period(enum.Enum):
    MONTH = "MONTH"
    QUARTER = "QUARTER"
    YEAR = "YEAR"


MONTHS = {Period.MONTH: 1, Period.QUARTER: 3, Period.YEAR: 12}


class MembershipStatus(enum.Enum):
    ACTIVE = "ACTIVE"  # paid for the current period; renews
    PAST_DUE = "PAST_DUE"  # a renewal was declined; retried within the grace period
    CANCELLED = "CANCELLED"  # by the buyer or an operator: no more renewals, the paid period stays
    LAPSED = "LAPSED"  # declined through the grace period: no more renewals


RENEWING = frozenset({MembershipStatus.ACTIVE, MembershipStatus.PAST_DUE})

RENEWAL_LEAD = timedelta(days=1)  # the charge goes out a day before the period ends
REMINDER_LEAD = timedelta(days=3)  # the buyer hears of it three days before the charge
DUNNING = (timedelta(days=1), timedelta(days=3))  # after the 1st and 2nd declined charge

# What a membership's history records.
SIGNED, CHARGED, DECLINED, REMINDED, CANCELLED, LAPSED = "SIGNED", "CHARGED", "DECLINED", "REMINDED", "CANCELLED", "LAPSED"


def add_period(start: datetime, period: Period, count: int = 1) -> datetime:
    """`start` moved on by `count` periods, on the same day of the month where there is one
    (31 January + 1 month = 28 or 29 February)."""
    months = start.month - 1 + MONTHS[period] * count
    year, month = start.year + months // 12, months % 12 + 1
    day = min(start.day, calendar.monthrange(year, month)[1])
    return start.replace(year=year, month=month, day=day)


def period_end(started_at: datetime, period: Period, number: int) -> datetime:
    """When period `number` (1, 2, ...) of a membership started at `started_at` ends."""
    return add_period(started_at, period, number)


def renewal_due(started_at: datetime, period: Period, paid_periods: int) -> datetime:
    """When the charge for the period after `paid_periods` goes out."""
    return period_end(started_at, period, paid_periods) - RENEWAL_LEAD


def reminder_due(started_at: datetime, period: Period, paid_periods: int) -> datetime:
    return renewal_due(started_at, period, paid_periods) - REMINDER_LEAD


def retry_after(declined: int) -> timedelta | None:
    """The wait before trying again after the `declined`-th declined charge of a period;
    None when the grace period is over (the membership lapses)."""
    return DUNNING[declined - 1] if 1 <= declined <= len(DUNNING) else None


def next_charge(started_at: datetime, period: Period, paid_periods: int, declined: int) -> datetime:
    """When the next charge is due: the renewal, or after `declined` declined charges of it,
    its next retry (as the job runs them, on time)."""
    return renewal_due(started_at, period, paid_periods) + sum(DUNNING[:declined], timedelta())
