"""The renewal and reminder jobs of memberships.

RENEW (due a lead time before a period ends): with the membership locked, charge the next
period (services/memberships/charging.py). Paid: the membership is ACTIVE for one more
period and the renewal after it is queued. Declined: PAST_DUE, and the job comes back after
the grace period's next wait (domain/memberships.py DUNNING); declined after the last wait,
the membership LAPSES. A membership that ended meanwhile (cancelled, lapsed) or whose period
is paid already (the job run again) is left as it is: the job ends without a charge.

REMIND (due a few days before the renewal): records the reminder and sends it through the
senders the gateway has (the inbox always; SMS and e-mail where configured), unless the
membership ended or the period was paid meanwhile.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from broker import Broker
from domain.memberships import CHARGED, DECLINED, LAPSED, REMINDED, RENEWING, MembershipStatus
from domain.memberships import next_charge, renewal_due, retry_after
from domain.money import Money
from models import Membership, Order
from providers.recurring import RecurringPayments
from services.core.clock import Clock
from services.core.database import Database
from services.core.worker import Handler, JobRun
from services.fulfilment.senders import Message, Sender
from services.memberships import charging, schedule


class Renewals:
    def __init__(self, db: Database, broker: Broker, provider: RecurringPayments | None, senders: Sequence[Sender],
                 clock: Clock, order_ttl: timedelta) -> None:
        self._db, self._broker, self._provider = db, broker, provider
        self._senders, self._clock, self._ttl = list(senders), clock, order_ttl

    def handlers(self) -> dict[str, Handler]:
        """None without a provider: a process that cannot charge leaves renewals to one that can."""
        if self._provider is None:
            return {}
        return {schedule.RENEW: self.renew, schedule.REMIND: self.remind}

    async def renew(self, run: JobRun) -> None:
        membership_id, period = int(run.job.payload["membership"]), int(run.job.payload["period"])  # type: ignore[call-overload]
        async with run.uow() as uow:
            now = self._clock()
            membership = await charging.locked(uow.session, membership_id)
            if membership is None or not _due(membership, period):
                await run.done(uow, now)
                return
            due = next_charge(membership.started_at, membership.period, membership.paid_periods, membership.declined)
            if self._provider is None or now < due:
                # Woken early (the job's time is the membership's, not the job's): wait for it.
                await run.later(uow, now, max((due - now).total_seconds(), 60.0))
                return
            charged = await charging.charge_period(uow, membership, period, self._provider, now=now, ttl=self._ttl)
            if charged.order is None:
                # Refused before any order was written: the placement may have rolled this
                # transaction back, and with it the lock. Take it again and look again.
                membership = await charging.locked(uow.session, membership_id)
                if membership is None or not _due(membership, period):
                    await run.done(uow, now)
                    return
            session = uow.session
            membership.updated_at = now
            if charged.paid:
                assert charged.order is not None
                membership.paid_periods, membership.declined = period, 0
                membership.status, membership.last_order_id = MembershipStatus.ACTIVE, charged.order.id
                charging.record(session, membership, CHARGED, now=now, period=period, order=charged.order)
                await schedule.next_renewal(uow, membership, now)
                await run.done(uow, now)
                return
            membership.declined += 1
            charging.record(session, membership, DECLINED, now=now, period=period, order=charged.order,
                            detail=f"{charged.code}: {charged.reason}")
            wait = retry_after(membership.declined)
            if wait is None:
                membership.status, membership.ended_at, membership.ended_by = MembershipStatus.LAPSED, now, charging.ACTOR
                charging.record(session, membership, LAPSED, now=now, period=period, detail="declined through the grace period")
                await run.done(uow, now)
                return
            membership.status = MembershipStatus.PAST_DUE
            await run.later(uow, now, wait.total_seconds())

    async def remind(self, run: JobRun) -> None:
        membership_id, period = int(run.job.payload["membership"]), int(run.job.payload["period"])  # type: ignore[call-overload]
        async with run.uow() as uow:
            now = self._clock()
            membership = await uow.session.get(Membership, membership_id)
            if membership is not None and _due(membership, period):
                due = renewal_due(membership.started_at, membership.period, period - 1)
                charging.record(uow.session, membership, REMINDED, now=now, period=period,
                                detail=f"renews {due:%Y-%m-%d %H:%M} UTC")
                last = await uow.session.get(Order, membership.last_order_id) if membership.last_order_id else None
                if last is not None:
                    message = _reminder(membership, last, due.strftime("%Y-%m-%d"))
                    for sender in self._senders:
                        if sender.accepts(message):
                            await sender.send(uow.session, message)
            await run.done(uow, now)


def _due(membership: Membership, period: int) -> bool:
    return membership.status in RENEWING and membership.paid_periods == period - 1


def _reminder(membership: Membership, last: Order, day: str) -> Message:
    # The inbox keeps messages by order: the reminder goes with the order of the period now paid.
    return Message(
        last.id, last.number, None, f"Membership {membership.number} renews on {day}",
        f"Your membership renews on {day} at the price of the day (last time {Money(last.total_fen, last.currency)}). "
        "Cancel any time before then to stop it; the period you paid for stays yours.",
        phone=membership.buyer_phone, email=membership.buyer_email,
    )
