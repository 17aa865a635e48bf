"""Channel stock quotas: a channel's cap on a SKU over the shared pool.

Consumption is one conditional UPDATE per quota, so it is atomic with the reservation that
runs in the same transaction: two buyers cannot both take the last unit of quota. What each
order line took from each quota is recorded (QuotaUse), and releasing a line gives back
exactly that, once: never units it did not take, such as those of an order placed before
the quota existed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from models import BundleItem, ChannelQuota, QuotaUse
from services.core.database import rows_changed


@dataclass(frozen=True, slots=True)
class Quota:
    quota: int
    used: int

    @property
    def remaining(self) -> int:
        return max(self.quota - self.used, 0)


@dataclass(frozen=True, slots=True)
class Take:
    """Units of one SKU an order line asks of the channel's quotas."""

    line_id: int
    sku_id: int
    quantity: int


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
    """Set (or with None remove) a channel's quota.

    A new value keeps the units orders took (they still give them back if they end unsold);
    a removed quota forgets its uses, so a quota set again later starts from nothing.
    """
    if quota is not None and quota < 0:
        raise ValueError("a quota cannot be negative")
    if quota is None:
        # The uses go first, before the quota's row is locked: a release holding a use
        # waits for nothing here, and nothing is given back to a quota set again later.
        capped = select(ChannelQuota.id).where(ChannelQuota.channel_id == channel_id, ChannelQuota.sku_id == sku_id)
        await session.execute(
            delete(QuotaUse).where(QuotaUse.quota_id.in_(capped)).execution_options(synchronize_session=False)
        )
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


async def consume(session: AsyncSession, channel_id: int, takes: Sequence[Take]) -> int | None:
    """Take what order lines ask of the channel's quotas, all or nothing, and record it.

    A bundle takes from its own quota and from each component's (quantity x the component's
    quantity per bundle). Quotas are taken in SKU order, as reserve() takes stock, so orders
    naming the same SKUs queue instead of deadlocking. Returns the line refused (the first
    asking for a quota that would be exceeded), else None; the caller then rolls back.
    """
    if not takes:
        return None
    skus = {take.sku_id for take in takes}
    components = select(BundleItem.component_sku_id).where(BundleItem.bundle_sku_id.in_(skus))
    capped = {
        sku_id: quota_id
        for quota_id, sku_id in await session.execute(
            select(ChannelQuota.id, ChannelQuota.sku_id).where(
                ChannelQuota.channel_id == channel_id,
                or_(ChannelQuota.sku_id.in_(skus), ChannelQuota.sku_id.in_(components)),
            )
        )
    }
    if not capped:
        return None  # the common case: one statement
    wants = list(takes)
    for bundle_id, component_id, per_bundle in await session.execute(
        select(BundleItem.bundle_sku_id, BundleItem.component_sku_id, BundleItem.quantity)
        .where(BundleItem.bundle_sku_id.in_(skus))
    ):
        wants.extend(
            Take(take.line_id, component_id, take.quantity * per_bundle) for take in takes if take.sku_id == bundle_id
        )
    wanted: dict[int, int] = defaultdict(int)
    for want in wants:
        if want.sku_id in capped:
            wanted[want.sku_id] += want.quantity
    for sku_id, units in sorted(wanted.items()):
        result = await session.execute(
            update(ChannelQuota)
            .where(ChannelQuota.id == capped[sku_id], ChannelQuota.quota - ChannelQuota.used >= units)
            .values(used=ChannelQuota.used + units)
            .execution_options(synchronize_session=False)
        )
        if rows_changed(result) != 1:
            return next(want.line_id for want in wants if want.sku_id == sku_id)
    session.add_all(
        QuotaUse(line_id=want.line_id, quota_id=capped[want.sku_id], sku_id=want.sku_id, units=want.quantity)
        for want in wants
        if want.sku_id in capped
    )
    return None


async def release(session: AsyncSession, line_ids: Sequence[int], now: datetime) -> list[int]:
    """Give back what the lines took from quotas; returns the SKU ids whose quota moved.

    Each use is claimed by the statement that marks it released, so of two releases racing
    for the same lines only one gives the units back. Quotas are then taken in SKU order,
    as consume() takes them.
    """
    if not line_ids:
        return []
    claimed = (
        await session.execute(
            update(QuotaUse)
            .where(QuotaUse.line_id.in_(line_ids), QuotaUse.released_at.is_(None))
            .values(released_at=now)
            .returning(QuotaUse.sku_id, QuotaUse.quota_id, QuotaUse.units)
            .execution_options(synchronize_session=False)
        )
    ).all()
    given: dict[tuple[int, int], int] = defaultdict(int)
    for sku_id, quota_id, units in claimed:
        given[(sku_id, quota_id)] += units
    for (_, quota_id), units in sorted(given.items()):
        await session.execute(
            update(ChannelQuota)
            .where(ChannelQuota.id == quota_id, ChannelQuota.used >= units)
            .values(used=ChannelQuota.used - units)
            .execution_options(synchronize_session=False)
        )
    return sorted({sku_id for sku_id, _ in given})
