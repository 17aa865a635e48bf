"""Channel stock quotas: a channel's cap on a SKU over the shared pool.

Consumption is one conditional UPDATE, so it is atomic with the reservation that
runs in the same transaction: two buyers cannot both take the last unit of quota.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from models import ChannelQuota
from services.core.database import rows_changed


@dataclass(frozen=True, slots=True)
class Quota:
    quota: int
    used: int

    @property
    def remaining(self) -> int:
        return max(self.quota - self.used, 0)


async def quotas_for(
    session: AsyncSession, keys: Sequence[tuple[int, int]]
) -> dict[tuple[int, int], Quota]:
    """Quotas of (channel id, SKU id) pairs; a pair without a row has no cap."""
    if not keys:
        return {}
    rows = await session.scalars(
        select(ChannelQuota).where(tuple_(ChannelQuota.channel_id, ChannelQuota.sku_id).in_(list(keys)))
    )
    return {(row.channel_id, row.sku_id): Quota(row.quota, row.used) for row in rows}


async def set_quota(session: AsyncSession, channel_id: int, sku_id: int, quota: int | None) -> Quota | None:
    """Set (or with None remove) a channel's quota; units already sold stay counted."""
    if quota is not None and quota < 0:
        raise ValueError("a quota cannot be negative")
    row = await session.scalar(
        select(ChannelQuota)
        .where(ChannelQuota.channel_id == channel_id, ChannelQuota.sku_id == sku_id)
        .with_for_update()
    )
    if quota is None:
        if row is not None:
            await session.delete(row)
        return None
    if row is None:
        row = ChannelQuota(channel_id=channel_id, sku_id=sku_id, quota=quota, used=0)
        session.add(row)
    else:
        row.quota = quota
    await session.flush()
    return Quota(row.quota, row.used)


async def consume(session: AsyncSession, channel_id: int, sku_id: int, quantity: int) -> bool:
    """Take `quantity` units of quota; False when the quota would be exceeded."""
    capped = await session.scalar(
        select(ChannelQuota.id).where(ChannelQuota.channel_id == channel_id, ChannelQuota.sku_id == sku_id)
    )
    if capped is None:
        return True
    result = await session.execute(
        update(ChannelQuota)
        .where(ChannelQuota.id == capped, ChannelQuota.quota - ChannelQuota.used >= quantity)
        .values(used=ChannelQuota.used + quantity)
    )
    return rows_changed(result) == 1


async def release(session: AsyncSession, channel_id: int, sku_id: int, quantity: int) -> None:
    """Give back quota of a cancelled or expired reservation."""
    await session.execute(
        update(ChannelQuota)
        .where(
            ChannelQuota.channel_id == channel_id,
            ChannelQuota.sku_id == sku_id,
            ChannelQuota.used >= quantity,
        )
        .values(used=ChannelQuota.used - quantity)
    )
