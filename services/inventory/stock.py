"""Available-to-sell per SKU, computed by the database in a fixed number of statements."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, literal, or_, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from domain.catalog import DRAWN, NO_STOCK, CodeStatus, SkuKind, StockFigures, box_stock, bundle_stock
from models import Allocation, BlindBoxItem, BundleItem, CardCode, Sku
from services.inventory import slots

_COUNTED = (CodeStatus.AVAILABLE, CodeStatus.RESERVED)


@dataclass(frozen=True, slots=True)
class _Tally:
    """Codes of one SKU in one status, and the uses they carry."""

    codes: int = 0
    uses: int = 0

    def units(self, kind: SkuKind) -> int:
        # A serial sells each of its uses; a card code is one unit whatever its uses say.
        return self.uses if kind is SkuKind.SERIAL else self.codes


async def bundle_parts(session: AsyncSession, sku_ids: Collection[int]) -> dict[int, list[tuple[int, int]]]:
    """(component SKU id, quantity per bundle) of each bundle among `sku_ids`, and (item SKU
    id, DRAWN) of each blind box, in one statement."""
    components: dict[int, list[tuple[int, int]]] = defaultdict(list)
    rows = await session.execute(union_all(
        select(BundleItem.bundle_sku_id, BundleItem.component_sku_id, BundleItem.quantity)
        .where(BundleItem.bundle_sku_id.in_(sku_ids)),
        select(BlindBoxItem.box_sku_id, BlindBoxItem.item_sku_id, literal(DRAWN))
        .where(BlindBoxItem.box_sku_id.in_(sku_ids)),
    ))
    for bundle_id, component_id, quantity in sorted(rows.all()):
        components[bundle_id].append((component_id, quantity))
    return dict(components)


async def stock_for(
    session: AsyncSession, sku_ids: Collection[int], *, now: datetime | None = None,
    parts: dict[int, list[tuple[int, int]]] | None = None,
) -> dict[int, StockFigures]:
    """Stock of each SKU; a bundle's from its components, a blind box's from its items. Five
    statements whatever the count.

    A code that has expired by `now` (default: the current time) is no longer sellable;
    a reserved one still counts as reserved, since an order holds it. `parts`: the
    bundle_parts() of `sku_ids`, when the caller has read them already.
    """
    if not sku_ids:
        return {}
    now = now or datetime.now(UTC)
    components = parts if parts is not None else await bundle_parts(session, sku_ids)
    wanted = set(sku_ids) | {c for parts in components.values() for c, _ in parts}

    skus = {
        sku_id: (kind, max(presale_cap - presale_used, 0))
        for sku_id, kind, presale_cap, presale_used in await session.execute(
            select(Sku.id, Sku.kind, Sku.presale_cap, Sku.presale_used).where(Sku.id.in_(wanted))
        )
    }
    # Uses of serials held by open orders: a serial stays AVAILABLE while it has uses left.
    serial_held = {
        sku_id: int(units or 0)
        for sku_id, units in await session.execute(
            select(Allocation.sku_id, func.sum(Allocation.units))
            .where(Allocation.sku_id.in_(wanted), Allocation.source == "SERIAL", Allocation.state == "HELD")
            .group_by(Allocation.sku_id)
        )
    }
    codes: dict[int, dict[CodeStatus, _Tally]] = defaultdict(dict)
    for sku_id, status, count, uses in await session.execute(
        select(CardCode.sku_id, CardCode.status, func.count(), func.sum(CardCode.uses_left))
        .where(
            CardCode.sku_id.in_(wanted),
            CardCode.status.in_(_COUNTED),
            or_(
                CardCode.status != CodeStatus.AVAILABLE,
                CardCode.expires_at.is_(None),
                CardCode.expires_at > now,
            ),
        )
        .group_by(CardCode.sku_id, CardCode.status)
    ):
        codes[sku_id][status] = _Tally(codes=int(count), uses=int(uses or 0))
    counters = {  # sums over each SKU's slots
        sku_id: (int(on_hand), int(reserved))
        for sku_id, on_hand, reserved in await session.execute(slots.TOTALS, {"skus": list(wanted)})
    }

    def single(sku_id: int) -> StockFigures:
        if sku_id not in skus:
            return NO_STOCK
        kind, presale_cap = skus[sku_id]
        if kind is SkuKind.DIRECT_RECHARGE:
            on_hand, reserved = counters.get(sku_id, (0, 0))
            return StockFigures(available=max(on_hand - reserved, 0), reserved=reserved)
        pool = codes.get(sku_id, {})
        return StockFigures(
            available=pool.get(CodeStatus.AVAILABLE, _Tally()).units(kind),
            reserved=pool.get(CodeStatus.RESERVED, _Tally()).units(kind) + serial_held.get(sku_id, 0),
            presale=presale_cap,
        )

    result: dict[int, StockFigures] = {}
    for sku_id in sku_ids:
        kind = skus.get(sku_id, (None, 0))[0]
        if kind is SkuKind.BUNDLE:
            result[sku_id] = bundle_stock((single(c), q) for c, q in components.get(sku_id, []))
        elif kind is SkuKind.BLIND_BOX:
            result[sku_id] = box_stock(single(c) for c, _ in components.get(sku_id, []))
        else:
            result[sku_id] = single(sku_id)
    return result
