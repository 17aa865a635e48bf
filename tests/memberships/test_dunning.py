"""A declined renewal is retried within the grace period; declined through it, the
membership lapses; an agreement the provider did not sign charges nothing."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import update

from models import Membership
from tests.memberships.conftest import Subscribing


async def test_a_declined_renewal_is_retried_and_a_success_in_grace_makes_it_active_again(subs: Subscribing) -> None:
    membership = (await subs.subscribe())["subscription"]
    await subs.run_jobs()
    subs.provider.decline_next(1, membership["number"])

    declined = await subs.live_to_next_renewal(membership)
    assert (declined["status"], declined["paidPeriods"]) == ("PAST_DUE", 1)
    assert [(o["period"], o["status"]) for o in declined["orders"]] == [(1, "DELIVERED"), (2, "CANCELLED")]
    assert declined["events"][-1]["kind"] == "DECLINED"
    assert declined["events"][-1]["detail"] == "PAYMENT_DECLINED: NOT_ENOUGH_BALANCE"
    assert datetime.fromisoformat(declined["nextRenewalAt"]) == subs.clock() + timedelta(days=1)

    subs.clock.move_to(declined["nextRenewalAt"])  # the first retry of the grace period
    await subs.run_jobs()
    seen = await subs.read(membership)
    assert seen is not None
    assert (seen["status"], seen["paidPeriods"]) == ("ACTIVE", 2)
    assert [(o["period"], o["status"]) for o in seen["orders"]] == [
        (1, "DELIVERED"), (2, "CANCELLED"), (2, "DELIVERED")]
    assert len(subs.provider.charged(seen["number"])) == 2
    # The calendar holds: the next period ends a month after the one paid late.
    assert datetime.fromisoformat(seen["currentPeriodEnd"]) > subs.clock() + timedelta(days=25)


async def test_declined_through_the_grace_period_a_membership_lapses_and_renews_no_more(subs: Subscribing) -> None:
    membership = (await subs.subscribe())["subscription"]
    await subs.run_jobs()
    subs.provider.decline_next(3, membership["number"])

    first = await subs.live_to_next_renewal(membership)
    assert first["status"] == "PAST_DUE"
    subs.clock.advance(days=1)
    await subs.run_jobs()
    second = await subs.read(membership)
    assert second is not None and second["status"] == "PAST_DUE"
    subs.clock.advance(days=3)
    await subs.run_jobs()

    lapsed = await subs.read(membership)
    assert lapsed is not None
    assert (lapsed["status"], lapsed["paidPeriods"], lapsed["nextRenewalAt"]) == ("LAPSED", 1, None)
    assert [e["kind"] for e in lapsed["events"]] == [
        "SIGNED", "CHARGED", "REMINDED", "DECLINED", "DECLINED", "DECLINED", "LAPSED"]
    assert [o["status"] for o in lapsed["orders"]] == ["DELIVERED", "CANCELLED", "CANCELLED", "CANCELLED"]

    subs.clock.advance(days=62)
    await subs.run_jobs()
    later = await subs.read(membership)
    assert later == lapsed
    assert len(subs.provider.charged(lapsed["number"])) == 1


async def test_an_agreement_id_the_provider_did_not_sign_is_refused_and_charges_nothing(subs: Subscribing) -> None:
    membership = (await subs.subscribe())["subscription"]
    other = (await subs.subscribe())["subscription"]
    await subs.run_jobs()
    async with subs.db.sessions() as session, session.begin():
        agreement = await session.scalar(
            Membership.__table__.select().with_only_columns(Membership.agreement_id)
            .where(Membership.number == membership["number"]))
        borrowed = await session.scalar(
            Membership.__table__.select().with_only_columns(Membership.agreement_id)
            .where(Membership.number == other["number"]))
        assert agreement is not None and borrowed is not None
        tampered = agreement[:-1] + ("0" if agreement[-1] != "0" else "1")
        await session.execute(update(Membership).where(Membership.number == membership["number"])
                              .values(agreement_id=tampered))
        # Another membership's genuine agreement is not this one's either.
        await session.execute(update(Membership).where(Membership.number == other["number"])
                              .values(agreement_id=agreement))

    refused = await subs.live_to_next_renewal(membership)
    refused_other = await subs.read(other)
    assert refused_other is not None
    for seen in (refused, refused_other):
        assert (seen["status"], seen["paidPeriods"]) == ("PAST_DUE", 1)
        assert seen["events"][-1]["kind"] == "DECLINED"
        assert seen["events"][-1]["detail"].startswith("AGREEMENT_INVALID")
        assert len(subs.provider.charged(seen["number"])) == 1
