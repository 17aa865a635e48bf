"""Purchase and hold limits as rules: periods in Beijing time, who counts as the buyer, what an
order adds to each count, and what it breaks on its own."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.limits import (
    HOLD_LIMIT,
    HOLD_SCOPE,
    PURCHASE_LIMIT,
    Breach,
    HoldLimit,
    Identity,
    LimitError,
    Period,
    PurchaseLimit,
    Tally,
    check_limit,
    current_scope,
    merged,
    purchase_scope,
    tallies,
)

# 2026-11-11 00:30 in Beijing is still the 10th in UTC.
JUST_AFTER_MIDNIGHT_IN_BEIJING = datetime(2026, 11, 10, 16, 30, tzinfo=UTC)
SKU = 7


def test_a_day_is_a_calendar_day_in_beijing() -> None:
    daily = PurchaseLimit(per_order=None, per_buyer=1, period=Period.DAY)

    assert daily.period_start(JUST_AFTER_MIDNIGHT_IN_BEIJING) == datetime(2026, 11, 10, 16, 0, tzinfo=UTC)
    assert daily.period_start(datetime(2026, 11, 10, 15, 59, tzinfo=UTC)) == datetime(2026, 11, 9, 16, 0, tzinfo=UTC)


def test_a_week_starts_on_monday_and_a_month_on_the_first() -> None:
    wednesday = JUST_AFTER_MIDNIGHT_IN_BEIJING  # 2026-11-11 is a Wednesday

    assert PurchaseLimit(None, 1, Period.WEEK).period_start(wednesday) == datetime(2026, 11, 8, 16, 0, tzinfo=UTC)
    assert PurchaseLimit(None, 1, Period.MONTH).period_start(wednesday) == datetime(2026, 10, 31, 16, 0, tzinfo=UTC)


def test_a_sale_counts_from_its_start_whenever_the_order_comes() -> None:
    start = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
    sale = PurchaseLimit(None, 1, Period.SALE, starts_at=start)

    assert sale.period_start(JUST_AFTER_MIDNIGHT_IN_BEIJING) == start
    assert sale.period_start(datetime(2027, 1, 1, tzinfo=UTC)) == start


def test_a_limit_is_at_least_one_unit_and_a_sale_has_a_start() -> None:
    with pytest.raises(LimitError) as zero:
        check_limit(PurchaseLimit(per_order=0, per_buyer=None))
    with pytest.raises(LimitError) as no_start:
        check_limit(PurchaseLimit(per_order=None, per_buyer=1, period=Period.SALE))

    assert (zero.value.field, no_start.value.field) == ("perOrder", "startsAt")


def test_every_contact_of_an_order_is_a_buyer_and_the_address_only_without_phone_device_or_account() -> None:
    with_phone = Identity(phone="13800138000", device="dev-1", address="203.0.113.9")
    email_only = Identity(email="li@example.cn", address="203.0.113.9")
    partner_order = Identity(email="li@example.cn")  # no address: not a caller from the public

    assert with_phone.buyers() == ["phone:13800138000", "device:dev-1"]
    assert email_only.buyers() == ["email:li@example.cn", "ip:203.0.113.9"]
    assert partner_order.buyers() == ["email:li@example.cn"]


def test_an_order_counts_against_each_of_its_buyers_under_the_limit() -> None:
    limit = PurchaseLimit(per_order=None, per_buyer=2)
    who = Identity(phone="13800138000", account="qq:1001")

    found = tallies({SKU: 1}, {SKU: limit}, None, who, channel_id=1, now=JUST_AFTER_MIDNIGHT_IN_BEIJING)

    scope = purchase_scope(1, SKU, datetime(2026, 11, 10, 16, 0, tzinfo=UTC))
    assert found == [Tally(scope, "phone:13800138000", 1, 2, SKU), Tally(scope, "account:qq:1001", 1, 2, SKU)]


def test_a_line_over_the_per_order_maximum_or_over_the_whole_allowance_breaks_the_limit_at_once() -> None:
    who = Identity(phone="13800138000")

    per_order = tallies({SKU: 3}, {SKU: PurchaseLimit(2, None)}, None, who, channel_id=1, now=JUST_AFTER_MIDNIGHT_IN_BEIJING)
    per_buyer = tallies({SKU: 2}, {SKU: PurchaseLimit(None, 1)}, None, who, channel_id=1, now=JUST_AFTER_MIDNIGHT_IN_BEIJING)

    assert per_order == Breach(PURCHASE_LIMIT, "at most 2 of this SKU in one order", SKU)
    assert per_buyer == Breach(PURCHASE_LIMIT, "this SKU is limited to 1 per buyer a day", SKU)


def test_an_order_holds_its_units_against_each_contact_and_the_address_under_their_own_caps() -> None:
    hold = HoldLimit(per_buyer=5, per_address=20)
    who = Identity(phone="13800138000", address="203.0.113.9")

    found = tallies({SKU: 2, SKU + 1: 1}, {}, hold, who, channel_id=1, now=JUST_AFTER_MIDNIGHT_IN_BEIJING)

    assert found == [Tally(HOLD_SCOPE, "phone:13800138000", 3, 5), Tally(HOLD_SCOPE, "ip:203.0.113.9", 3, 20)]
    assert all(tally.held for tally in found)


def test_an_order_larger_than_the_hold_cap_is_refused_before_anything_is_counted() -> None:
    found = tallies({SKU: 20}, {}, HoldLimit(5, 20), Identity(phone="13800138000"), channel_id=1,
                    now=JUST_AFTER_MIDNIGHT_IN_BEIJING)

    assert isinstance(found, Breach) and found.code == HOLD_LIMIT and found.sku_id is None


def test_a_channels_own_hold_caps_replace_the_defaults_and_zero_lifts_a_cap() -> None:
    defaults = HoldLimit.of(5, 20)

    assert defaults.over(None) == HoldLimit(5, 20)
    assert defaults.over(HoldLimit(per_buyer=2, per_address=None)) == HoldLimit(2, 20)
    assert defaults.over(HoldLimit(per_buyer=0, per_address=0)) == HoldLimit(None, None)
    assert HoldLimit.of(0, 0) == HoldLimit(None, None)


def test_tallies_are_taken_in_one_order_by_everyone() -> None:
    found = [Tally("sku:1:2:x", "phone:1", 1, 1, 2), Tally(HOLD_SCOPE, "ip:a", 1, 20), Tally(HOLD_SCOPE, "device:d", 1, 5)]

    assert [tally.key for tally in merged(found)] == [
        (HOLD_SCOPE, "device:d"), (HOLD_SCOPE, "ip:a"), ("sku:1:2:x", "phone:1"),
    ]


@pytest.mark.parametrize("period", [Period.DAY, Period.WEEK, Period.MONTH, Period.SALE])
def test_the_scope_an_order_counts_in_moves_on_when_its_period_does(period: Period) -> None:
    # Kept between orders, the scope still turns at Beijing midnight, on Mondays, on the 1st.
    limit = PurchaseLimit(None, 1, period, datetime(2026, 11, 11, 12, tzinfo=UTC) if period is Period.SALE else None)
    moment = datetime(2026, 11, 27, 15, 59, tzinfo=UTC)
    for _ in range(2_000):
        assert current_scope(1, SKU, limit, moment) == purchase_scope(1, SKU, limit.period_start(moment))
        moment += timedelta(minutes=37)
