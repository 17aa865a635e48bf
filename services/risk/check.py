"""The risk check of an order attempt: rules from a cache every process keeps current,
counters recorded and counted, the pure engine's verdict, and the verdict stored."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from broker import Broker
from broker.follow import follow
from domain.risk import (
    Dimension,
    Facts,
    Rule,
    Verdict,
    counters_needed,
    evaluate,
    needs_account_age,
)
from models import Channel, Order, RiskVerdict
from services.risk.counters import Counters
from services.risk.rules import RULES_CHANGED, active_rules

log = logging.getLogger("quanyi.risk")

VERDICTS_TOPIC = "risk.verdicts"


class RuleBook:
    """The enabled rules, read once and kept until a change is announced.

    A change commits, then `changed()` drops this process's copy and tells every other
    process through the broker to drop theirs: the next order everywhere is scored
    with the new rules. A short time-to-live covers a broker that lost a message; while the
    broker is down the copy is not used at all (each check reads the rules).
    """

    def __init__(self, broker: Broker, ttl_seconds: float = 30.0) -> None:
        self._broker = broker
        self._ttl = ttl_seconds
        self._rules: list[Rule] | None = None
        self._loaded_at = 0.0
        # Bumped by each change: a load that began before a change must not be kept.
        self._generation = 0
        # One load at a time: a rush of orders after a change waits for one read, not a read each.
        self._loading = asyncio.Lock()

    def _fresh(self) -> list[Rule] | None:
        if self._rules is not None and time.monotonic() - self._loaded_at < self._ttl and self._broker.live:
            return self._rules
        return None

    async def rules(self, session: AsyncSession) -> list[Rule]:
        """The enabled rules, read with the caller's session when the copy is stale.

        The caller's own connection, never a second one: five hundred orders each holding a
        connection and each waiting for another would empty the pool.
        """
        cached = self._fresh()
        if cached is not None:
            return cached
        async with self._loading:
            cached = self._fresh()
            if cached is not None:
                return cached
            generation = self._generation
            rules = await active_rules(session)
            if generation == self._generation:
                self._rules, self._loaded_at = rules, time.monotonic()
            return rules

    def forget(self) -> None:
        self._generation += 1
        self._rules = None

    async def changed(self) -> None:
        """Call after a rule change commits."""
        self.forget()
        await self._broker.publish(RULES_CHANGED, b"1")

    async def follow(self) -> None:
        """Forget the rules whenever an edit is announced, in this process or another."""
        await follow(self._broker, RULES_CHANGED, lambda _: self.forget(), on_lost=self.forget,
                     what="risk rule changes")


class RiskCheck:
    """Scores an order attempt; chosen once per process with its counters backend."""

    def __init__(self, book: RuleBook, counters: Counters) -> None:
        self.book = book
        self.counters = counters

    async def screen(
        self, session: AsyncSession, facts: Facts, *, attempt: str | None = None
    ) -> tuple[Verdict, Facts]:
        """The verdict of an attempt, with its facts completed by the account's age.

        One call to the counter store (one Redis round trip) records and counts every counter
        and reads and keeps when the account was first seen. `session` reads only when needed:
        rules gone stale, or an account the store has no entry for, whose first order on record
        (if any) then corrects the store in a second call.

        `attempt` is the attempt's idempotency key: the store counts an attempt once, and hands
        a retry of it (concurrent or later, in any process) what its first try counted, so a
        retry is scored as its first try was and never raises a count.
        """
        rules = await self.book.rules(session)
        account = facts.value(Dimension.ACCOUNT) if needs_account_age(rules, facts) else None
        hits = counters_needed(rules, facts, age_from_store=account is not None)
        if not hits:
            return evaluate(rules, facts, {}), facts
        now = facts.at.timestamp()
        once = None if attempt is None else f"{facts.channel}:{attempt}"
        tally = await self.counters.tally(hits, now, account=account, attempt=once)
        counts = {hit.key: count for hit, count in zip(hits, tally.counts, strict=True)}
        first_seen = tally.first_seen
        if account is not None and tally.unknown:
            # Not in the store (taken for new): an account that ordered before is not new.
            first = await _first_order(session, facts, attempt)
            if first is not None:
                first_seen = first.timestamp()
                new_account = [hit for hit in hits if hit.new_within_seconds is not None]
                corrected = await self.counters.correct(
                    new_account, now, account=account, first_order=first_seen, attempt=once
                )
                counts.update({hit.key: count for hit, count in zip(new_account, corrected, strict=True)})
        if account is not None:
            age = None if first_seen is None else facts.at - datetime.fromtimestamp(first_seen, UTC)
            facts = replace(facts, account_age=age)
        return evaluate(rules, facts, counts), facts


async def _first_order(session: AsyncSession, facts: Facts, attempt: str | None) -> datetime | None:
    """When this account first ordered; None for an account never seen.

    Not counting the attempt's own order, placed meanwhile by a concurrent retry of it: the
    attempt would otherwise make its own account old.
    """
    column = Order.recharge_account if facts.account != facts.email else Order.buyer_email
    query = select(func.min(Order.created_at)).where(column == facts.account)
    if attempt is not None:
        channel = select(Channel.id).where(Channel.code == facts.channel).scalar_subquery()
        query = query.where(or_(Order.idempotency_key != attempt, Order.channel_id != channel))
    first = await session.scalar(query)
    if first is None:
        return None
    if isinstance(first, str):  # SQLite hands aggregates back untyped
        first = datetime.fromisoformat(first)
    if first.tzinfo is None:
        first = first.replace(tzinfo=UTC)
    return first


def facts_record(facts: Facts) -> dict[str, Any]:
    return {
        "channel": facts.channel, "at": facts.at.isoformat(), "amount": str(facts.amount.amount),
        "currency": facts.amount.currency, "quantities": {str(k): v for k, v in sorted(facts.quantities.items())},
        "clientIp": facts.client_ip, "deviceId": facts.device_id, "phone": facts.phone, "email": facts.email,
        "account": facts.account, "coupon": facts.coupon,
        "accountAgeSeconds": int(facts.account_age.total_seconds()) if facts.account_age is not None else None,
    }


def record_verdict(
    session: AsyncSession, verdict: Verdict, facts: Facts, *, channel_id: int, idempotency_key: str,
    order_id: int | None,
) -> RiskVerdict:
    row = RiskVerdict(
        order_id=order_id, channel_id=channel_id, idempotency_key=idempotency_key, decision=verdict.decision,
        score=verdict.score, facts=facts_record(facts), created_at=facts.at,
        reasons=[
            {"rule": r.rule, "observed": r.observed, "threshold": r.threshold, "action": r.action.value, "score": r.score}
            for r in verdict.reasons
        ],
    )
    session.add(row)
    return row
