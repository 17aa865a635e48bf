"""Queueing a membership's next renewal and its reminder on the durable job queue.

Each is a job keyed by the membership and the period it is for, written in the transaction
that paid the period before: queued exactly when the period is paid, once however often
that transaction's work is run again.
"""

from __future__ import annotations

from datetime import datetime

from domain.memberships import reminder_due, renewal_due
from models import Membership
from services.core import jobs
from services.core.unit_of_work import UnitOfWork

RENEW = "membership_renew"  # charge the next period of a membership
REMIND = "membership_remind"  # tell the buyer a renewal is coming


def renew_key(membership_id: int, period: int) -> str:
    return f"{RENEW}:{membership_id}:{period}"


def remind_key(membership_id: int, period: int) -> str:
    return f"{REMIND}:{membership_id}:{period}"


async def next_renewal(uow: UnitOfWork, membership: Membership, now: datetime) -> datetime:
    """Queue the renewal after the paid periods, and its reminder if there is time for one;
    returns when the renewal is due."""
    period = membership.paid_periods + 1
    due = renewal_due(membership.started_at, membership.period, membership.paid_periods)
    remind = reminder_due(membership.started_at, membership.period, membership.paid_periods)
    payload: dict[str, object] = {"membership": membership.id, "period": period}
    await jobs.enqueue(uow.session, RENEW, renew_key(membership.id, period), now=now, payload=payload,
                       delay=max((due - now).total_seconds(), 0.0))
    if remind > now:
        await jobs.enqueue(uow.session, REMIND, remind_key(membership.id, period), now=now, payload=payload,
                           delay=(remind - now).total_seconds())
    uow.publish(jobs.JOBS_TOPIC, b"")
    return due
