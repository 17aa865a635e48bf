"""The membership calendar and dunning as tables, and the simulated provider's signed agreements."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.memberships import Period, add_period, next_charge, renewal_due, retry_after
from providers.recurring import AgreementRefused, AgreementRequest, Charge, ChargeState
from providers.recurring_sim import RecurringSim


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(("start", "period", "count", "end"), [
    ("2026-01-31T10:00", Period.MONTH, 1, "2026-02-28T10:00"),
    ("2028-01-31T10:00", Period.MONTH, 1, "2028-02-29T10:00"),
    ("2026-01-31T10:00", Period.MONTH, 2, "2026-03-31T10:00"),  # from the start, not from February
    ("2026-11-15T00:00", Period.QUARTER, 1, "2027-02-15T00:00"),
    ("2026-12-06T06:00", Period.YEAR, 1, "2027-12-06T06:00"),
    ("2026-12-06T06:00", Period.MONTH, 13, "2028-01-06T06:00"),
])
def test_periods_follow_the_calendar_from_the_start(start: str, period: Period, count: int, end: str) -> None:
    assert add_period(_at(start), period, count) == _at(end)


def test_renewals_are_charged_a_day_early_and_retried_after_one_then_three_days() -> None:
    start = _at("2026-12-06T06:00")
    assert renewal_due(start, Period.MONTH, 1) == _at("2027-01-05T06:00")
    assert [retry_after(n) for n in (1, 2, 3)] == [timedelta(days=1), timedelta(days=3), None]
    assert next_charge(start, Period.MONTH, 1, 2) == _at("2027-01-09T06:00")


async def test_the_simulator_refuses_agreement_ids_it_did_not_sign_for_that_subscriber() -> None:
    sim = RecurringSim(b"s" * 32)
    agreement = await sim.sign(AgreementRequest("NCM-MONTH", "SB1", 1800, "CNY", "MONTH"))
    other_key = await RecurringSim(b"t" * 32).sign(AgreementRequest("NCM-MONTH", "SB1", 1800, "CNY", "MONTH"))
    body, _, mac = agreement.agreement_id.rpartition(".")
    forged = [
        other_key.agreement_id,  # signed by someone else
        f"{body}.{'0' * len(mac)}",  # a made-up signature
        f"{body[:-1]}{'A' if body[-1] != 'A' else 'B'}.{mac}",  # the terms changed under the signature
        "sim_agr_", "", "sim_agr_..", agreement.agreement_id + " ",
    ]
    for agreement_id in forged:
        with pytest.raises(AgreementRefused):
            await sim.charge(Charge(agreement_id, "SB1", "SB1-2-1", 1500, "CNY", "renewal"))
    with pytest.raises(AgreementRefused):  # a genuine id, borrowed by another subscriber
        await sim.charge(Charge(agreement.agreement_id, "SB2", "SB2-2-1", 1500, "CNY", "renewal"))
    assert sim.charges == {}


async def test_the_simulator_charges_a_key_once_and_declines_over_the_cap_or_after_a_cancel() -> None:
    sim = RecurringSim(b"s" * 32)
    agreement = (await sim.sign(AgreementRequest("NCM-MONTH", "SB1", 1800, "CNY", "MONTH"))).agreement_id
    first = await sim.charge(Charge(agreement, "SB1", "SB1-2-1", 1500, "CNY", "renewal"))
    again = await sim.charge(Charge(agreement, "SB1", "SB1-2-1", 1500, "CNY", "renewal"))
    assert first.state is ChargeState.SUCCEEDED and again == first and len(sim.charged()) == 1
    over = await sim.charge(Charge(agreement, "SB1", "SB1-3-1", 1801, "CNY", "renewal"))
    assert (over.state, over.reason) == (ChargeState.DECLINED, "OVER_AGREED_LIMIT")
    await sim.cancel(agreement, "SB1")
    ended = await sim.charge(Charge(agreement, "SB1", "SB1-3-2", 1500, "CNY", "renewal"))
    assert (ended.state, ended.reason) == (ChargeState.DECLINED, "AGREEMENT_ENDED")
