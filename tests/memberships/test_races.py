"""A period is charged once however often its renewal runs, and never after a cancel committed."""

from __future__ import annotations

import asyncio

from sqlalchemy import update

from models import Job
from services.core import jobs
from services.core.jobs import READY
from tests.memberships.conftest import Subscribing


async def test_a_renewal_job_run_again_makes_no_second_order_or_charge(subs: Subscribing) -> None:
    membership = (await subs.subscribe())["subscription"]
    await subs.run_jobs()
    renewed = await subs.live_to_next_renewal(membership)
    assert renewed["paidPeriods"] == 2
    # The same job comes round again (a worker lost its lease, a duplicate delivery).
    async with subs.db.sessions() as session, session.begin():
        await session.execute(update(Job).where(Job.key.like(f"membership_renew:%:2"), Job.status == jobs.DONE)
                              .values(status=READY, lease=None, locked_until=None, run_after=subs.clock()))
    await subs.run_jobs()

    again = await subs.read(membership)
    assert again == renewed
    assert [o["period"] for o in again["orders"]] == [1, 2]
    assert len(subs.provider.charged(renewed["number"])) == 2


async def test_two_workers_running_one_renewal_at_once_charge_it_once(subs: Subscribing) -> None:
    membership = (await subs.subscribe())["subscription"]
    await subs.run_jobs()
    job = await subs.claim_renewal(membership)

    # Both hold the same job (one's lease ran out while it worked): they queue on the membership.
    results = await asyncio.gather(*(subs.renewals.renew(subs.run_of(job, name)) for name in ("w1", "w2")),
                                   return_exceptions=True)
    assert sum(isinstance(r, jobs.LeaseLost) for r in results) <= 1
    assert all(r is None or isinstance(r, jobs.LeaseLost) for r in results)
    await subs.run_jobs()

    seen = await subs.read(membership)
    assert seen is not None
    assert seen["paidPeriods"] == 2
    assert [(o["period"], o["status"]) for o in seen["orders"]] == [(1, "DELIVERED"), (2, "DELIVERED")]
    assert len(subs.provider.charged(seen["number"])) == 2


async def test_a_cancel_racing_a_renewal_is_never_followed_by_a_charge(subs: Subscribing) -> None:
    for _ in range(3):
        subscribed = await subs.subscribe()
        membership, token = subscribed["subscription"], subscribed["accessToken"]
        await subs.run_jobs()
        job = await subs.claim_renewal(membership)
        ended = len(subs.provider.cancelled)

        renewal, cancel = await asyncio.gather(subs.renewals.renew(subs.run_of(job, "w1")), subs.cancel(membership, token))
        assert renewal is None and cancel["userErrors"] == []
        subs.clock.advance(days=70)
        await subs.run_jobs()

        seen = await subs.read(membership)
        assert seen is not None
        kinds = [e["kind"] for e in seen["events"]]
        assert seen["status"] == "CANCELLED"
        assert "CHARGED" not in kinds[kinds.index("CANCELLED"):]  # nothing charged after the cancel
        assert seen["paidPeriods"] in (1, 2)
        assert len(subs.provider.charged(seen["number"])) == seen["paidPeriods"] == kinds.count("CHARGED")
        assert len(subs.provider.cancelled) == ended + 1  # the agreement is ended at the provider too


async def test_a_renewal_job_woken_early_waits_for_the_membership_s_time(subs: Subscribing) -> None:
    membership = (await subs.subscribe())["subscription"]
    await subs.run_jobs()
    async with subs.db.sessions() as session, session.begin():
        await session.execute(update(Job).where(Job.key.like("membership_renew:%"), Job.status == READY)
                              .values(run_after=subs.clock()))
    await subs.run_jobs()

    seen = await subs.read(membership)
    assert seen is not None and seen["paidPeriods"] == 1
    assert len(subs.provider.charged(seen["number"])) == 1
    renewed = await subs.live_to_next_renewal(membership)  # and on time it renews
    assert renewed["paidPeriods"] == 2
