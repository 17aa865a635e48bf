"""Which direct top-up SKUs are sold by subscription, renewing how often, charging at most what."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from domain.catalog import SkuKind
from domain.memberships import Period
from models import MembershipPlan, Sku


@dataclass(frozen=True, slots=True)
class PlanRefusal:
    field: str
    message: str
    code: str


async def set_plan(
    session: AsyncSession, sku_id: int, period: Period, *, enabled: bool, cap_fen: int | None, actor: str, now: datetime,
) -> MembershipPlan | PlanRefusal:
    """Sell the SKU by subscription (or stop: `enabled` false; memberships already made renew
    on). `cap_fen`: the most one renewal may charge, by default the SKU's face value."""
    sku = await session.get(Sku, sku_id)
    if sku is None or sku.archived_at is not None:
        return PlanRefusal("input.skuId", "no such SKU", "NOT_FOUND")
    if sku.kind is not SkuKind.DIRECT_RECHARGE:
        return PlanRefusal("input.skuId", "only a direct top-up SKU can be sold by subscription", "NOT_SUBSCRIBABLE")
    cap = sku.face_value_fen if cap_fen is None else cap_fen
    if not 0 < cap <= 10**10:
        return PlanRefusal("input.maxCharge", "the most one renewal may charge is above 0", "INVALID_INPUT")
    plan = await session.get(MembershipPlan, sku_id, with_for_update=True)
    if plan is None:
        plan = MembershipPlan(sku_id=sku_id, period=period, enabled=enabled, cap_fen=cap, updated_at=now,
                              updated_by=actor[:64])
        session.add(plan)
    else:
        plan.period, plan.enabled, plan.cap_fen, plan.updated_at, plan.updated_by = period, enabled, cap, now, actor[:64]
    await session.flush()
    return plan
