"""What attempts turned out to be, for the model to learn from: a review's decision, a chargeback,
an operator's finding. One label per verdict; a later label replaces an earlier one."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models import RiskLabel, RiskVerdict

SOURCES = ("REVIEW", "CHARGEBACK", "OPERATOR")


async def label_verdict(
    session: AsyncSession, verdict_id: int, *, fraud: bool, source: str, actor: str, now: datetime
) -> bool:
    """Label one verdict; False when there is no such verdict."""
    if source not in SOURCES:
        raise ValueError(f"a label's source is one of {', '.join(SOURCES)}")
    if await session.scalar(select(RiskVerdict.id).where(RiskVerdict.id == verdict_id)) is None:
        return False
    row = await session.scalar(select(RiskLabel).where(RiskLabel.verdict_id == verdict_id).with_for_update())
    if row is None:
        session.add(RiskLabel(verdict_id=verdict_id, fraud=fraud, source=source, actor=actor, created_at=now))
    else:
        row.fraud, row.source, row.actor, row.created_at = fraud, source, actor, now
    await session.flush()
    return True


async def label_order(session: AsyncSession, order_id: int, *, fraud: bool, source: str, actor: str, now: datetime) -> bool:
    """Label the verdict of an order's attempt; False when the order had none."""
    verdict = await session.scalar(select(RiskVerdict.id).where(RiskVerdict.order_id == order_id))
    return verdict is not None and await label_verdict(
        session, verdict, fraud=fraud, source=source, actor=actor, now=now
    )
