"""Purchase limits (限购) and hold limits as operators set them, and as orders and the
catalog read them. The rules are in domain/limits.py; the counting in tallies.py."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime

from sqlalchemy import delete, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from domain.limits import HoldLimit, Period, PurchaseLimit, check_limit
from models import HoldLimit as HoldLimitRow
from models import PurchaseLimit as PurchaseLimitRow


def limit_of(row: PurchaseLimitRow) -> PurchaseLimit:
    return PurchaseLimit(row.per_order, row.per_buyer, row.period, row.starts_at)


def hold_of(row: HoldLimitRow | None) -> HoldLimit | None:
    """A channel's own hold caps (a null cap: the gateway's default; 0: none)."""
    return HoldLimit(row.per_buyer, row.per_address) if row is not None else None


async def set_purchase_limit(
    session: AsyncSession, channel_id: int, sku_id: int, limit: PurchaseLimit | None, *, actor: str, now: datetime
) -> PurchaseLimit | None:
    """Set a SKU's limit on a channel, or with None (or no cap at all) remove it.

    What buyers already bought keeps counting: the counts are per SKU, channel and period,
    not per limit, so lowering a limit in the middle of a day holds those who already
    reached it, and a limit removed and set again finds its period's counts where they were.
    A new `starts_at` for a SALE starts a new count; a SALE without one counts from the
    running sale's start, or from now. Raises LimitError for a limit that cannot be set.
    """
    if limit is None or (limit.per_order is None and limit.per_buyer is None):
        await session.execute(
            delete(PurchaseLimitRow).where(PurchaseLimitRow.channel_id == channel_id, PurchaseLimitRow.sku_id == sku_id)
        )
        return None
    if limit.period is Period.SALE and limit.starts_at is None:
        # A limit of a running sale changed without a start keeps counting from the sale's.
        kept = await session.scalar(
            select(PurchaseLimitRow.starts_at).where(
                PurchaseLimitRow.channel_id == channel_id, PurchaseLimitRow.sku_id == sku_id,
                PurchaseLimitRow.period == Period.SALE,
            )
        )
        limit = replace(limit, starts_at=kept or now)
    elif limit.starts_at is not None:
        limit = replace(limit, starts_at=limit.starts_at.astimezone(UTC))  # as stored and read back
    check_limit(limit)
    values = {"per_order": limit.per_order, "per_buyer": limit.per_buyer, "period": limit.period,
              "starts_at": limit.starts_at, "updated_by": actor, "updated_at": now}
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    statement = insert(PurchaseLimitRow).values(channel_id=channel_id, sku_id=sku_id, **values)
    await session.execute(statement.on_conflict_do_update(index_elements=["channel_id", "sku_id"], set_=values))
    return limit


async def purchase_limits(session: AsyncSession, keys: Sequence[tuple[int, int]]) -> dict[tuple[int, int], PurchaseLimit]:
    """Limits of (channel id, SKU id) pairs; a pair without one has no limit."""
    if not keys:
        return {}
    rows = await session.scalars(
        select(PurchaseLimitRow).where(tuple_(PurchaseLimitRow.channel_id, PurchaseLimitRow.sku_id).in_(list(keys)))
    )
    return {(row.channel_id, row.sku_id): limit_of(row) for row in rows}


async def set_hold_limit(
    session: AsyncSession, channel_id: int, hold: HoldLimit, *, actor: str, now: datetime
) -> None:
    """Set a channel's own hold caps; both null: the gateway's defaults again."""
    if hold.per_buyer is None and hold.per_address is None:
        await session.execute(delete(HoldLimitRow).where(HoldLimitRow.channel_id == channel_id))
        return
    values = {"per_buyer": hold.per_buyer, "per_address": hold.per_address, "updated_by": actor, "updated_at": now}
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    statement = insert(HoldLimitRow).values(channel_id=channel_id, **values)
    await session.execute(statement.on_conflict_do_update(index_elements=["channel_id"], set_=values))


async def hold_limits(session: AsyncSession, channel_ids: Sequence[int]) -> dict[int, HoldLimit]:
    """Channels' own hold caps; a channel without a row keeps the gateway's defaults."""
    if not channel_ids:
        return {}
    rows = await session.scalars(select(HoldLimitRow).where(HoldLimitRow.channel_id.in_(list(channel_ids))))
    return {row.channel_id: HoldLimit(row.per_buyer, row.per_address) for row in rows}
