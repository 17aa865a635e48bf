"""Statement periods and reconciliation of two sides' records."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from domain.money import Money
from domain.settlement import (
    SETTLEMENT_ZONE,
    Cycle,
    Discrepancy,
    Finding,
    Record,
    RowError,
    check_records,
    last_complete_period,
    parse_record,
    reconcile,
)

NOW = datetime(2026, 11, 25, 19, 0, tzinfo=UTC)  # Thursday 03:00 on the 26th in Beijing


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=SETTLEMENT_ZONE)


@pytest.mark.parametrize(
    ("cycle", "period"),
    [
        (Cycle.DAILY, (local(2026, 11, 25), local(2026, 11, 26))),
        (Cycle.WEEKLY, (local(2026, 11, 16), local(2026, 11, 23))),
        (Cycle.MONTHLY, (local(2026, 10, 1), local(2026, 11, 1))),
    ],
)
def test_the_default_period_is_the_last_complete_one_in_beijing_time(cycle: Cycle, period: tuple[datetime, datetime]) -> None:
    assert last_complete_period(cycle, NOW) == period


def test_january_settles_the_december_before() -> None:
    assert last_complete_period(Cycle.MONTHLY, local(2027, 1, 15)) == (local(2026, 12, 1), local(2027, 1, 1))


def test_records_are_parsed_or_refused_with_their_row() -> None:
    assert parse_record(1, " TB-1 ", "9.90", "delivered", "CNY") == Record("TB-1", Money(990), "DELIVERED")
    rule = 'an amount is a decimal string of ASCII digits with at most two decimal places, such as "9.90"'
    assert parse_record(2, "TB-2", "9.999", "DELIVERED", "CNY") == RowError(2, "amount", f"row 2: {rule}")
    assert parse_record(3, "", "1", "DELIVERED", "CNY") == RowError(3, "externalOrderNumber", "row 3: an order number is 1 to 128 characters")
    assert parse_record(4, "TB-4", "ten", "DELIVERED", "CNY") == RowError(4, "amount", f"row 4: {rule}")
    assert parse_record(5, "TB-5", " 9.90 ", "DELIVERED", "CNY") == Record("TB-5", Money(990), "DELIVERED")
    assert parse_record(6, "TB-6", "1e3", "DELIVERED", "CNY") == RowError(6, "amount", f"row 6: {rule}")


def test_an_order_given_twice_is_refused() -> None:
    records, errors = check_records([Record("A", Money(1), "DELIVERED"), Record("A", Money(1), "DELIVERED")])

    assert errors == [RowError(2, "externalOrderNumber", "row 2: order A is given twice", "DUPLICATE_RECORD")]


def test_reconciliation_names_every_kind_of_difference() -> None:
    ours = [Record("A", Money(100), "DELIVERED"), Record("B", Money(200), "DELIVERED"), Record("C", Money(300), "DELIVERED")]
    theirs = [Record("B", Money(250), "REFUNDED"), Record("C", Money(300), "DELIVERED"), Record("D", Money(50), "DELIVERED")]

    assert reconcile(ours, theirs) == [
        Finding(Discrepancy.MISSING_ON_THEIR_SIDE, "A", ours[0], None),
        Finding(Discrepancy.AMOUNT_MISMATCH, "B", ours[1], theirs[0]),
        Finding(Discrepancy.STATUS_MISMATCH, "B", ours[1], theirs[0]),
        Finding(Discrepancy.MISSING_ON_OUR_SIDE, "D", None, theirs[2]),
    ]
