"""Sale events (预约抢购) as rules: what a schedule may be, where a sale stands, who may buy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.limits import Identity
from domain.sales import (
    NOT_REGISTERED,
    SALE_ENDED,
    SALE_NOT_STARTED,
    Sale,
    SaleError,
    SaleState,
    admission,
    check_schedule,
    tick_seconds,
)

NOW = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)
START = NOW + timedelta(hours=12)
SECOND = timedelta(seconds=1)


def _sale(**changes: object) -> Sale:
    fields: dict[str, object] = {"id": 1, "channel_id": 1, "sku_id": 7, "starts_at": START}
    fields.update(changes)
    return Sale(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("starts_at", "ends_at", "opens_at", "closes_at", "field"),
    [
        (NOW - SECOND, None, None, None, "startsAt"),
        (NOW, None, None, None, "startsAt"),
        (NOW + timedelta(days=367), None, None, None, "startsAt"),
        (START, START, None, None, "endsAt"),
        (START, START - SECOND, None, None, "endsAt"),
        (START, START + timedelta(days=367), None, None, "endsAt"),
        (START, None, None, START + SECOND, "registrationClosesAt"),
        (START, None, START - timedelta(hours=1), START - timedelta(hours=2), "registrationClosesAt"),
        (START, None, None, NOW - SECOND, "registrationClosesAt"),
        (START, None, START, None, "registrationOpensAt"),
        (NOW + timedelta(days=200), None, None, None, "registrationOpensAt"),
    ],
    ids=["start in the past", "start now", "start beyond a year", "end at the start", "end before the start",
         "end beyond a year", "registration closing after the start", "registration closing before it opens",
         "registration closed already", "registration opening at the start", "registration open 200 days"],
)
def test_a_schedule_at_the_edge_is_refused_naming_its_field(
    starts_at: datetime, ends_at: datetime | None, opens_at: datetime | None, closes_at: datetime | None, field: str
) -> None:
    if field == "registrationOpensAt" and opens_at is None:
        opens_at = NOW  # a window of 200 days: from now to the start
    with pytest.raises(SaleError) as refused:
        check_schedule(NOW, starts_at, ends_at, opens_at, closes_at)
    assert refused.value.field == field


def test_a_window_given_by_one_end_runs_from_now_or_up_to_the_start() -> None:
    assert check_schedule(NOW, START, None, None, None) == (None, None)
    assert check_schedule(NOW, START, None, None, START - SECOND) == (NOW, START - SECOND)
    assert check_schedule(NOW, START, None, NOW + SECOND, None) == (NOW + SECOND, START)
    assert check_schedule(NOW, START, None, NOW - timedelta(days=1), None) == (NOW, START)


def test_where_a_sale_stands_over_its_life() -> None:
    sale = _sale(ends_at=START + timedelta(hours=1), registration_opens_at=NOW + SECOND,
                 registration_closes_at=START - timedelta(minutes=5))

    assert [sale.state(at) for at in (NOW, NOW + SECOND, START - timedelta(minutes=5), START - SECOND, START,
                                      START + timedelta(hours=1))] == [
        SaleState.SCHEDULED, SaleState.REGISTRATION_OPEN, SaleState.SCHEDULED, SaleState.SCHEDULED,
        SaleState.STARTED, SaleState.ENDED,
    ]
    assert _sale(cancelled=True).state(START) is SaleState.CANCELLED
    assert [sale.seconds_to_start(at) for at in (START - timedelta(seconds=2.5), START - SECOND, START, START + SECOND)] == [3, 1, 0, 0]


BUYER = Identity(phone="13800138000", device="abc")


def test_one_second_before_the_start_the_order_is_refused_and_at_the_start_it_is_not() -> None:
    sale = _sale()

    refused = admission(sale, START - SECOND, BUYER, None)
    assert refused is not None and refused.code == SALE_NOT_STARTED
    assert admission(sale, START, BUYER, None) is None


def test_with_registration_only_a_registered_identity_may_buy() -> None:
    sale = _sale(registration_opens_at=NOW, registration_closes_at=START)
    registered = frozenset({"phone:13800138000"})

    assert admission(sale, START, BUYER, registered) is None
    assert admission(sale, START, Identity(phone="13900139000", device="abc"), registered).code == NOT_REGISTERED  # type: ignore[union-attr]
    assert admission(sale, START, Identity(email="a@example.com"), frozenset()).code == NOT_REGISTERED  # type: ignore[union-attr]


def test_an_ended_sale_refuses_and_a_cancelled_one_governs_nothing() -> None:
    assert admission(_sale(ends_at=START + SECOND), START + SECOND, BUYER, None).code == SALE_ENDED  # type: ignore[union-attr]
    assert admission(_sale(cancelled=True), START - SECOND, BUYER, None) is None


@pytest.mark.parametrize(("seconds", "tick"), [(1, 1), (60, 1), (61, 10), (600, 10), (601, 60), (86_400, 60)])
def test_a_countdown_ticks_faster_as_the_start_nears(seconds: int, tick: int) -> None:
    assert tick_seconds(seconds) == tick
