"""Channel prices: resolve them for a page of SKUs, and change them under price control."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.money import Money
from domain.pricing import (
    ChannelPriceRule,
    PriceBounds,
    PriceViolation,
    QuantityTier,
    ResolvedPrice,
    check_bounds,
    check_price,
    resolve_price,
)
from models import ChannelPrice, PriceChange, PriceTier, Sku


@dataclass(frozen=True, slots=True)
class SkuPricing:
    """Everything needed to price one SKU on one channel, for any quantity."""

    base: Money
    bounds: PriceBounds
    rules: tuple[ChannelPriceRule, ...]
    tiers: tuple[QuantityTier, ...]

    def at(self, moment: datetime, quantity: int = 1) -> ResolvedPrice:
        return resolve_price(
            base=self.base, rules=self.rules, tiers=self.tiers, bounds=self.bounds,
            quantity=quantity, at=moment,
        )


def bounds_of(sku: Sku) -> PriceBounds:
    floor = Money(sku.price_floor_fen, sku.currency) if sku.price_floor_fen is not None else None
    ceiling = Money(sku.price_ceiling_fen, sku.currency) if sku.price_ceiling_fen is not None else None
    return PriceBounds(floor=floor, ceiling=ceiling)


async def pricing_for(
    session: AsyncSession,
    keys: Sequence[tuple[int | None, int]],
    now: datetime,
    *,
    skus: Mapping[int, Sku] | None = None,
) -> dict[tuple[int | None, int], SkuPricing]:
    """Pricing of (channel id, SKU id) pairs in three statements; channel None: base only.

    A caller that already holds the SKU rows passes them in `skus`, saving one statement.
    """
    sku_ids = {sku_id for _, sku_id in keys}
    channel_ids = {channel_id for channel_id, _ in keys if channel_id is not None}
    if skus is None:
        skus = {row.id: row for row in await session.scalars(select(Sku).where(Sku.id.in_(sku_ids)))}
    rules: dict[tuple[int, int], list[ChannelPriceRule]] = defaultdict(list)
    tiers: dict[tuple[int, int], list[QuantityTier]] = defaultdict(list)
    if channel_ids:
        for row in await session.scalars(
            select(ChannelPrice)
            .where(
                ChannelPrice.channel_id.in_(channel_ids),
                ChannelPrice.sku_id.in_(sku_ids),
                or_(ChannelPrice.ends_at.is_(None), ChannelPrice.ends_at > now),
            )
            .order_by(ChannelPrice.id)
        ):
            currency = skus[row.sku_id].currency
            rules[(row.channel_id, row.sku_id)].append(
                ChannelPriceRule(Money(row.price_fen, currency), row.starts_at, row.ends_at)
            )
        for tier in await session.scalars(
            select(PriceTier)
            .where(PriceTier.channel_id.in_(channel_ids), PriceTier.sku_id.in_(sku_ids))
            .order_by(PriceTier.min_quantity)
        ):
            currency = skus[tier.sku_id].currency
            tiers[(tier.channel_id, tier.sku_id)].append(
                QuantityTier(tier.min_quantity, Money(tier.price_fen, currency))
            )
    result = {}
    for channel_id, sku_id in keys:
        sku = skus.get(sku_id)
        if sku is None:
            continue
        pair = (channel_id or 0, sku_id)
        result[(channel_id, sku_id)] = SkuPricing(
            base=Money(sku.base_price_fen, sku.currency),
            bounds=bounds_of(sku),
            rules=tuple(rules.get(pair, ())),
            tiers=tuple(tiers.get(pair, ())),
        )
    return result


@dataclass(frozen=True, slots=True)
class PriceChangeRequest:
    channel_id: int
    sku_id: int
    amount: Decimal
    starts_at: datetime | None = None
    ends_at: datetime | None = None


async def set_channel_price(
    session: AsyncSession, request: PriceChangeRequest, *, actor: str
) -> PriceViolation | ChannelPrice:
    """Set a standing price (no window) or add a promotion window, recording the change.

    The SKU row is locked first so two operators changing one price are serialised
    and the audit's `old` is the price the change really replaced.
    """
    sku = await session.scalar(select(Sku).where(Sku.id == request.sku_id).with_for_update())
    if sku is None:
        raise LookupError("unknown SKU")
    price = Money.of(request.amount, sku.currency)
    violation = check_price(price, bounds_of(sku), starts_at=request.starts_at, ends_at=request.ends_at)
    if violation is not None:
        return violation
    is_window = request.starts_at is not None or request.ends_at is not None
    standing = None
    if not is_window:
        standing = await session.scalar(
            select(ChannelPrice).where(
                ChannelPrice.channel_id == request.channel_id,
                ChannelPrice.sku_id == request.sku_id,
                ChannelPrice.starts_at.is_(None),
                ChannelPrice.ends_at.is_(None),
            )
        )
    old = standing.price_fen if standing is not None else None
    if standing is not None:
        standing.price_fen = price.minor
        row = standing
    else:
        row = ChannelPrice(
            channel_id=request.channel_id, sku_id=request.sku_id, price_fen=price.minor,
            starts_at=request.starts_at, ends_at=request.ends_at,
        )
        session.add(row)
    session.add(
        PriceChange(
            channel_id=request.channel_id, sku_id=request.sku_id, actor=actor,
            old_price_fen=old, new_price_fen=price.minor,
            starts_at=request.starts_at, ends_at=request.ends_at,
        )
    )
    await session.flush()
    return row


async def set_price_tiers(
    session: AsyncSession, channel_id: int, sku_id: int, tiers: Sequence[tuple[int, Decimal]], *, actor: str
) -> PriceViolation | None:
    """Replace a channel's quantity tiers for a SKU; each tier respects the price control."""
    sku = await session.scalar(select(Sku).where(Sku.id == sku_id).with_for_update())
    if sku is None:
        raise LookupError("unknown SKU")
    parsed = [(minimum, Money.of(amount, sku.currency)) for minimum, amount in tiers]
    for _, price in parsed:
        violation = check_price(price, bounds_of(sku))
        if violation is not None:
            return violation
    await session.execute(delete(PriceTier).where(PriceTier.channel_id == channel_id, PriceTier.sku_id == sku_id))
    for minimum, price in parsed:
        session.add(PriceTier(channel_id=channel_id, sku_id=sku_id, min_quantity=minimum, price_fen=price.minor))
        session.add(PriceChange(channel_id=channel_id, sku_id=sku_id, actor=f"{actor} tier>={minimum}",
                                old_price_fen=None, new_price_fen=price.minor))
    await session.flush()
    return None


def set_price_control(sku: Sku, floor: Decimal | None, ceiling: Decimal | None) -> PriceViolation | None:
    """Set a SKU's floor and ceiling. Channel prices outside them are sold at the bound."""
    bounds = PriceBounds(
        floor=Money.of(floor, sku.currency) if floor is not None else None,
        ceiling=Money.of(ceiling, sku.currency) if ceiling is not None else None,
    )
    violation = check_bounds(bounds)
    if violation is not None:
        return violation
    sku.price_floor_fen = bounds.floor.minor if bounds.floor else None
    sku.price_ceiling_fen = bounds.ceiling.minor if bounds.ceiling else None
    return None
