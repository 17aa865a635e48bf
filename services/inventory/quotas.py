"""Channel stock quotas: a channel's cap on a SKU over the shared pool.

A quota is spread over slots that orders take from independently (quota_slots.py): the
channel's quota is the sum of the slots' shares, what is used the sum of theirs. Each take
is a conditional UPDATE of a slot, atomic with the reservation that runs in the same
transaction: two buyers cannot both take the last unit of room. What each order line took
from each slot is recorded (QuotaUse), and releasing a line gives back exactly that, to
that slot, once: never units it did not take, such as those of an order placed before the
quota existed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.slots import DEFAULT_SLOTS
from models import BundleItem, ChannelQuota, QuotaUse
from services.inventory import quota_slots


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
    """Quotas of (channel id, SKU id) pairs, summed over their slots; a pair without a row
    has no cap."""
    if not keys:
        return {}
    rows = await session.execute(
        select(ChannelQuota.channel_id, ChannelQuota.sku_id, func.sum(ChannelQuota.quota), func.sum(ChannelQuota.used))
        .where(tuple_(ChannelQuota.channel_id, ChannelQuota.sku_id).in_(list(keys)))
        .group_by(ChannelQuota.channel_id, ChannelQuota.sku_id)
    )
    return {(channel_id, sku_id): Quota(int(quota), int(used)) for channel_id, sku_id, quota, used in rows}


async def set_quota(
    session: AsyncSession, channel_id: int, sku_id: int, quota: int | None, slots: int = DEFAULT_SLOTS
) -> Quota | None:
    """Set (or with None remove) a channel's quota, spread over `slots` slots.

    A new value keeps the units orders took, in their slots (they still give them back
    there if they end unsold); one below them leaves no room until releases make some
    (domain/slots.quota_shares). A removed quota forgets its uses, so a quota set again
    later starts from nothing.
    """
    if quota is not None and quota < 0:
        raise ValueError("a quota cannot be negative")
    if quota is not None:
        return Quota(*await quota_slots.lay_out(session, channel_id, sku_id, quota, slots))
    # The uses go first, before the quota's slots are locked: a release holding a use
    # waits for nothing here, and nothing is given back to a quota set again later.
    pair = (ChannelQuota.channel_id == channel_id, ChannelQuota.sku_id == sku_id)
    capped = select(ChannelQuota.id).where(*pair)
    await session.execute(
        delete(QuotaUse).where(QuotaUse.quota_id.in_(capped)).execution_options(synchronize_session=False)
    )
    await session.execute(select(ChannelQuota.id).where(*pair).order_by(ChannelQuota.slot).with_for_update())
    await session.execute(delete(ChannelQuota).where(*pair).execution_options(synchronize_session=False))
    return None


async def consume(session: AsyncSession, channel_id: int, takes: Sequence[Take]) -> int | None:
    """Take what order lines ask of the channel's quotas, all or nothing, and record it.

    A bundle takes from its own quota and from each component's (quantity x the component's
    quantity per bundle). Quotas are taken in SKU order, as reserve() takes stock, so orders
    naming the same SKUs queue instead of deadlocking; each SKU's units at once, from its
    slots (quota_slots.take), the uses naming the slots. Returns the line refused (the first
    asking for a quota that would be exceeded), else None; the caller then rolls back.
    """
    if not takes:
        return None
    skus = {take.sku_id for take in takes}
    components = select(BundleItem.component_sku_id).where(BundleItem.bundle_sku_id.in_(skus))
    capped = set(
        await session.scalars(
            select(ChannelQuota.sku_id).distinct().where(
                ChannelQuota.channel_id == channel_id,
                or_(ChannelQuota.sku_id.in_(skus), ChannelQuota.sku_id.in_(components)),
            )
        )
    )
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
    wanted: dict[int, list[Take]] = defaultdict(list)
    for want in wants:
        if want.sku_id in capped:
            wanted[want.sku_id].append(want)
    for sku_id, asking in sorted(wanted.items()):
        plan = await quota_slots.take(session, channel_id, sku_id, sum(want.quantity for want in asking))
        if not plan:
            return asking[0].line_id
        session.add_all(_uses(asking, plan))
    return None


def _uses(asking: Sequence[Take], plan: Sequence[tuple[int, int]]) -> list[QuotaUse]:
    """The uses recording what each line took of one SKU's quota, from the slots `plan`
    took its units from, in order."""
    uses: list[QuotaUse] = []
    slots = iter(plan)
    quota_id, left = next(slots)
    for want in asking:
        owed = want.quantity
        while owed:
            if not left:
                quota_id, left = next(slots)
            part = min(owed, left)
            uses.append(QuotaUse(line_id=want.line_id, quota_id=quota_id, sku_id=want.sku_id, units=part))
            owed, left = owed - part, left - part
    return uses


async def release(session: AsyncSession, line_ids: Sequence[int], now: datetime) -> list[int]:
    """Give back what the lines took from quotas; returns the SKU ids whose quota moved.

    Each use is claimed by the statement that marks it released, so of two releases racing
    for the same lines only one gives the units back, to the slot it took them from. Each
    (SKU, channel) pair given back to is then held whole, pairs in that order (the order in
    which consume() takes them), its slots in slot order; one left over its share is laid
    out again, so a quota lowered below what is used sells nothing until what is used falls
    under it (quota_slots.give_back tells why no overshoot and no deadlock follow).
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
    if not claimed:
        return []
    given: dict[int, int] = defaultdict(int)
    for _, quota_id, units in claimed:
        given[quota_id] += units
    # A slot's pair never changes; a slot removed since (its quota with it) is skipped.
    pairs: dict[tuple[int, int], dict[int, int]] = defaultdict(dict)
    for sku_id, channel_id, quota_id in await session.execute(
        select(ChannelQuota.sku_id, ChannelQuota.channel_id, ChannelQuota.id).where(ChannelQuota.id.in_(sorted(given)))
    ):
        pairs[sku_id, channel_id][quota_id] = given[quota_id]
    for (sku_id, channel_id), units in sorted(pairs.items()):
        await quota_slots.give_back(session, channel_id, sku_id, units)
    return sorted({sku_id for sku_id, _, _ in claimed})
