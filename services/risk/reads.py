"""Risk reads: verdicts by order and by page, rules and their change history, and the summary."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from domain.risk import Decision
from models import Channel, RiskRule, RiskRuleChange, RiskVerdict

TOP_RULES = 5
# Reasons are read back for the top-rules figure; past this many flagged attempts an hour
# the figure is drawn from the newest ones.
TOP_RULES_SAMPLE = 2_000


async def verdicts_of_orders(session: AsyncSession, order_ids: Sequence[int]) -> dict[int, RiskVerdict]:
    rows = await session.scalars(select(RiskVerdict).where(RiskVerdict.order_id.in_(order_ids)))
    return {row.order_id: row for row in rows if row.order_id is not None}


async def verdict_page(
    session: AsyncSession, *, decision: Decision | None, channel_id: int | None, before_id: int | None, limit: int
) -> tuple[list[tuple[RiskVerdict, str]], bool]:
    """Newest first, keyset on id, each with its channel's code; and whether more follow."""
    query = select(RiskVerdict, Channel.code).join(Channel, Channel.id == RiskVerdict.channel_id)
    if decision is not None:
        query = query.where(RiskVerdict.decision == decision)
    if channel_id is not None:
        query = query.where(RiskVerdict.channel_id == channel_id)
    return await _newest_first(session, query, RiskVerdict.id, before_id, limit)


async def verdict_by_id(session: AsyncSession, pk: int) -> tuple[RiskVerdict, str] | None:
    found = (
        await session.execute(
            select(RiskVerdict, Channel.code).join(Channel, Channel.id == RiskVerdict.channel_id).where(RiskVerdict.id == pk)
        )
    ).first()
    return (found[0], found[1]) if found else None


async def rules(session: AsyncSession, *, include_archived: bool) -> list[tuple[RiskRule, str | None]]:
    query = select(RiskRule, Channel.code).outerjoin(Channel, Channel.id == RiskRule.channel_id)
    if not include_archived:
        query = query.where(RiskRule.archived_at.is_(None))
    return [(rule, code) for rule, code in await session.execute(query.order_by(RiskRule.id))]


async def rule_by_id(session: AsyncSession, pk: int) -> tuple[RiskRule, str | None] | None:
    found = (
        await session.execute(
            select(RiskRule, Channel.code).outerjoin(Channel, Channel.id == RiskRule.channel_id).where(RiskRule.id == pk)
        )
    ).first()
    return (found[0], found[1]) if found else None


async def rule_changes(
    session: AsyncSession, *, rule_id: int | None, before_id: int | None, limit: int
) -> tuple[list[tuple[RiskRuleChange, str]], bool]:
    query = select(RiskRuleChange, RiskRule.name).join(RiskRule, RiskRule.id == RiskRuleChange.rule_id)
    if rule_id is not None:
        query = query.where(RiskRuleChange.rule_id == rule_id)
    return await _newest_first(session, query, RiskRuleChange.id, before_id, limit)


async def _newest_first(
    session: AsyncSession, query: Select[Any], id_column: InstrumentedAttribute[int], before_id: int | None, limit: int
) -> tuple[list[Any], bool]:
    """One keyset page of (row, label) pairs, newest id first; and whether more follow."""
    if before_id is not None:
        query = query.where(id_column < before_id)
    rows = [(row, label) for row, label in await session.execute(query.order_by(id_column.desc()).limit(limit + 1))]
    return rows[:limit], len(rows) > limit


@dataclass(frozen=True, slots=True)
class RiskSummary:
    rejected: int
    reviewed: int
    top_rules: tuple[tuple[str, int], ...]  # (rule, attempts it flagged), most first


async def summary(session: AsyncSession, since: datetime, *, channel_id: int | None = None) -> RiskSummary:
    """REJECT and REVIEW verdicts since a moment, and the rules that flagged most of them."""
    flagged = (RiskVerdict.created_at >= since, RiskVerdict.decision != Decision.PASS)
    scope = (RiskVerdict.channel_id == channel_id,) if channel_id is not None else ()
    counts = dict(
        (decision, int(count))
        for decision, count in await session.execute(
            select(RiskVerdict.decision, func.count()).where(*flagged, *scope).group_by(RiskVerdict.decision)
        )
    )
    reasons = await session.scalars(
        select(RiskVerdict.reasons).where(*flagged, *scope).order_by(RiskVerdict.id.desc()).limit(TOP_RULES_SAMPLE)
    )
    tally: Counter[str] = Counter(reason["rule"] for found in reasons for reason in found)
    top = tuple(sorted(tally.items(), key=lambda item: (-item[1], item[0]))[:TOP_RULES])
    return RiskSummary(counts.get(Decision.REJECT, 0), counts.get(Decision.REVIEW, 0), top)
