"""The risk check of an order attempt: rules from a cache every process keeps current,
counters recorded and counted, the pure engine's verdict, and the verdict stored."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from broker import Broker
from broker.follow import follow
from domain.risk import (
    Dimension,
    Facts,
    Opinion,
    Rule,
    Verdict,
    counters_needed,
    evaluate,
    model_match,
    model_rules,
    needs_account_age,
)
from domain.risk_features import features, model_counters
from domain.risk_model import explain, score
from models import Channel, Order, RiskVerdict
from services.risk.counters import Counters
from domain.risk_model import Model
from services.risk.models import MODEL_CHANGED, active_model
from services.risk.rules import RULES_CHANGED, active_rules

log = logging.getLogger("quanyi.risk")

VERDICTS_TOPIC = "risk.verdicts"
T = TypeVar("T")


class Book(Generic[T]):
    """What the check reads from the database on every order, read once and kept until a change is announced.

    A change commits, then `changed()` drops this process's copy and tells every other
    process through the broker to drop theirs: the next order everywhere sees the change.
    A short time-to-live covers a broker that lost a message; while the broker is down the
    copy is not used at all (each check reads again).
    """

    def __init__(
        self, broker: Broker, read: Callable[[AsyncSession], Awaitable[T]], topic: str, what: str,
        ttl_seconds: float = 30.0,
    ) -> None:
        self._broker = broker
        self._read = read
        self._topic = topic
        self._what = what
        self._ttl = ttl_seconds
        self._copy: T | None = None
        self._loaded_at = 0.0
        # Bumped by each change: a load that began before a change must not be kept.
        self._generation = 0
        # One load at a time: a rush of orders after a change waits for one read, not a read each.
        self._loading = asyncio.Lock()
        self._loaded = False

    def _fresh(self) -> bool:
        return self._loaded and time.monotonic() - self._loaded_at < self._ttl and self._broker.live

    async def current(self, session: AsyncSession) -> T:
        """The copy, read with the caller's session when stale.

        The caller's own connection, never a second one: five hundred orders each holding a
        connection and each waiting for another would empty the pool.
        """
        if self._fresh():
            return self._copy  # type: ignore[return-value]
        async with self._loading:
            if self._fresh():
                return self._copy  # type: ignore[return-value]
            generation = self._generation
            found = await self._read(session)
            if generation == self._generation:
                self._copy, self._loaded_at, self._loaded = found, time.monotonic(), True
            return found

    def forget(self) -> None:
        self._generation += 1
        self._copy, self._loaded = None, False

    async def changed(self) -> None:
        """Call after a change commits."""
        self.forget()
        await self._broker.publish(self._topic, b"1")

    async def follow(self) -> None:
        """Forget the copy whenever a change is announced, in this process or another."""
        await follow(self._broker, self._topic, lambda _: self.forget(), on_lost=self.forget, what=self._what)


class RuleBook(Book[list[Rule]]):
    """The enabled rules."""

    def __init__(self, broker: Broker, ttl_seconds: float = 30.0) -> None:
        super().__init__(broker, active_rules, RULES_CHANGED, "risk rule changes", ttl_seconds)

    async def rules(self, session: AsyncSession) -> list[Rule]:
        return await self.current(session)


class ModelBook(Book["Model | None"]):
    """The active risk model, or None while none is."""

    def __init__(self, broker: Broker, ttl_seconds: float = 30.0) -> None:
        super().__init__(broker, active_model, MODEL_CHANGED, "risk model changes", ttl_seconds)


class RiskCheck:
    """Scores an order attempt; chosen once per process with its counters backend."""

    def __init__(self, book: RuleBook, counters: Counters, models: ModelBook | None = None) -> None:
        self.book = book
        self.counters = counters
        self.models = models

    async def screen(
        self, session: AsyncSession, facts: Facts, *, attempt: str | None = None
    ) -> tuple[Verdict, Facts]:
        """The verdict of an attempt, with its facts completed by the account's age and the model's opinion.

        One call to the counter store (one Redis round trip) records and counts every counter
        and reads and keeps when the account was first seen. `session` reads only when needed:
        rules or model gone stale, or an account the store has no entry for, whose first order on
        record (if any) then corrects the store in a second call.

        `attempt` is the attempt's idempotency key: the store counts an attempt once, and hands
        a retry of it (concurrent or later, in any process) what its first try counted, so a
        retry is scored as its first try was and never raises a count.

        Where a model rule applies (enforced or in shadow), the model's own counters are
        recorded in the same call and the attempt's features kept with the verdict, so the
        outcomes can train the next model; the model scores when one is active.
        """
        rules = await self.book.rules(session)
        scoring = bool(model_rules(rules, facts.channel)) and self.models is not None
        model = await self.models.current(session) if scoring and self.models is not None else None
        return await self.judge(
            rules, facts, attempt=attempt, scoring=scoring, model=model,
            first_order=lambda: _first_order(session, facts, attempt),
        )

    async def judge(
        self, rules: list[Rule], facts: Facts, *, attempt: str | None, scoring: bool, model: Model | None,
        first_order: Callable[[], Awaitable[datetime | None]],
    ) -> tuple[Verdict, Facts]:
        """`screen` with the rules and model at hand, and the account's first order asked of `first_order`.

        Replaying recorded attempts (services/risk/replay.py) goes through here too, so a model
        is trained on features computed exactly as the gateway computes them.
        """
        account = facts.value(Dimension.ACCOUNT) if scoring or needs_account_age(rules, facts) else None
        hits = counters_needed(rules, facts, age_from_store=account is not None)
        if scoring:
            hits += model_counters(facts)
        if not hits:
            return evaluate(rules, facts, {}), facts
        now = facts.at.timestamp()
        once = None if attempt is None else f"{facts.channel}:{attempt}"
        tally = await self.counters.tally(hits, now, account=account, attempt=once)
        counts = {hit.key: count for hit, count in zip(hits, tally.counts, strict=True)}
        first_seen = tally.first_seen
        if account is not None and tally.unknown:
            # Not in the store (taken for new): an account that ordered before is not new.
            first = await first_order()
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
        if scoring:
            facts = replace(facts, model=opinion(model, facts, counts))
            facts = replace(facts, model=replace(facts.model, shadow=tuple(shadow_matches(rules, facts))))
        return evaluate(rules, facts, counts), facts


def opinion(model: Model | None, facts: Facts, counts: dict[str, int]) -> Opinion:
    """The model's score of the attempt; with no model active, only the features, kept for training."""
    if model is None:
        return Opinion(None, None, "", tuple(features(facts, counts, ())))
    values = features(facts, counts, model.channels)
    result = score(model, values)
    return Opinion(model.version, result.probability, explain(result, values), tuple(values))


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
        **({"model": model_record(facts)} if facts.model is not None else {}),
    }


def model_record(facts: Facts) -> dict[str, Any]:
    """What the verdict keeps of the model: its features (to train on), its score and reasons."""
    opinion = facts.model
    assert opinion is not None
    return {
        "version": opinion.version,
        "score": None if opinion.probability is None else round(opinion.probability, 6),
        "explanation": opinion.explanation or None,
        "features": list(opinion.features),
        "shadowMatched": list(opinion.shadow),
    }


def shadow_matches(rules: list[Rule], facts: Facts) -> list[str]:
    """The shadow model rules this attempt would have matched, had they been enforced."""
    return [
        rule.name for rule in model_rules(rules, facts.channel)
        if rule.parameters["shadow"] and model_match(rule, facts) is not None
    ]


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
