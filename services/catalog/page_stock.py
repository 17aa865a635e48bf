"""A page's stock on one channel in one statement: what services/inventory computes in six
(bundle parts, presale, serial holds, code tallies, counters, quotas), as one UNION ALL.

Stock is the part of a page that moves with every order, so it is read with every page;
what it is computed from (which SKUs a product has, their kinds, a bundle's parts) is
reference data the caller already holds (reference.py). The figures are the same rules'
(domain/catalog.py): code-backed SKUs count their pool, top-ups their counter, bundles their
scarcest component, and a channel's quotas cap it all.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime

from sqlalchemy import bindparam, func, literal, or_, select, union_all
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.catalog import (
    NO_STOCK,
    CodeStatus,
    SkuKind,
    StockFigures,
    box_stock,
    channel_bundle_stock,
    channel_stock,
)
from models import Allocation, CardCode, ChannelQuota, Sku, StockLevel

Parts = Callable[[int], Sequence[tuple[int, int]]]


def _statement():  # type: ignore[no-untyped-def]
    """Built once: its parameters are the SKU ids (`ids`), the channel and the moment."""
    ids = bindparam("ids", expanding=True)

    def codes(tag: str, status: CodeStatus, *where: object):  # type: ignore[no-untyped-def]
        return (
            select(literal(tag), CardCode.sku_id, func.count(), func.coalesce(func.sum(CardCode.uses_left), 0))
            .where(CardCode.sku_id.in_(ids), CardCode.status == status, *where)  # type: ignore[arg-type]
            .group_by(CardCode.sku_id)
        )

    return union_all(
        select(literal("p"), Sku.id, Sku.presale_cap, Sku.presale_used).where(Sku.id.in_(ids)),
        # A code that has expired is no longer sellable; a reserved one still counts as reserved.
        codes(
            "a", CodeStatus.AVAILABLE,
            or_(CardCode.expires_at.is_(None), CardCode.expires_at > bindparam("now", type_=CardCode.expires_at.type)),
        ),
        codes("r", CodeStatus.RESERVED),
        # Uses of serials held by open orders: a serial stays AVAILABLE while it has uses left.
        select(literal("s"), Allocation.sku_id, func.coalesce(func.sum(Allocation.units), 0), literal(0))
        .where(Allocation.sku_id.in_(ids), Allocation.source == "SERIAL", Allocation.state == "HELD")
        .group_by(Allocation.sku_id),
        # Counter stock: sums over each SKU's slots.
        select(literal("l"), StockLevel.sku_id, func.sum(StockLevel.on_hand), func.sum(StockLevel.reserved))
        .where(StockLevel.sku_id.in_(ids))
        .group_by(StockLevel.sku_id),
        # The channel's quotas: sums over each quota's slots.
        select(literal("q"), ChannelQuota.sku_id, func.sum(ChannelQuota.quota), func.sum(ChannelQuota.used))
        .where(ChannelQuota.channel_id == bindparam("channel"), ChannelQuota.sku_id.in_(ids))
        .group_by(ChannelQuota.sku_id),
    )


# Building the statement costs more than running it: it is built once.
_STOCK = _statement()


async def page_stock(
    conn: AsyncConnection, channel_id: int, kinds: Mapping[int, SkuKind], wanted: Collection[int], parts: Parts,
    now: datetime,
) -> dict[int, StockFigures]:
    """The channel's figures for each SKU of `wanted`. `kinds`: the kind of every SKU wanted
    and of every bundle component; `parts`: a bundle's (component, quantity per bundle)."""
    if not wanted:
        return {}
    every = set(wanted) | {c for sku_id in wanted for c, _ in parts(sku_id)}
    presale: dict[int, int] = {}
    available: dict[int, tuple[int, int]] = {}
    reserved: dict[int, tuple[int, int]] = {}
    held: dict[int, int] = {}
    counters: dict[int, tuple[int, int]] = {}
    left: dict[int, int] = {}
    for tag, sku_id, first, second in await conn.execute(
        _STOCK, {"ids": sorted(every), "channel": channel_id, "now": now}
    ):
        first, second = int(first or 0), int(second or 0)
        if tag == "p":
            presale[sku_id] = max(first - second, 0)
        elif tag == "a":
            available[sku_id] = (first, second)
        elif tag == "r":
            reserved[sku_id] = (first, second)
        elif tag == "s":
            held[sku_id] = first
        elif tag == "l":
            counters[sku_id] = (first, second)
        else:
            left[sku_id] = max(first - second, 0)

    def units(tally: tuple[int, int] | None, kind: SkuKind) -> int:
        # A serial sells each of its uses; a card code is one unit whatever its uses say.
        if tally is None:
            return 0
        return tally[1] if kind is SkuKind.SERIAL else tally[0]

    def shared(sku_id: int) -> StockFigures:
        kind = kinds.get(sku_id)
        if sku_id not in presale or kind is None:
            return NO_STOCK
        if kind is SkuKind.DIRECT_RECHARGE:
            on_hand, taken = counters.get(sku_id, (0, 0))
            return StockFigures(available=max(on_hand - taken, 0), reserved=taken)
        return StockFigures(
            available=units(available.get(sku_id), kind),
            reserved=units(reserved.get(sku_id), kind) + held.get(sku_id, 0),
            presale=presale[sku_id],
        )

    result: dict[int, StockFigures] = {}
    for sku_id in wanted:
        if kinds.get(sku_id) is SkuKind.BLIND_BOX:
            drawn = box_stock(channel_stock(shared(c), left.get(c)) for c, _ in parts(sku_id))
            result[sku_id] = channel_stock(drawn, left.get(sku_id))
        elif kinds.get(sku_id) is SkuKind.BUNDLE:
            items = [(shared(c), left.get(c), quantity) for c, quantity in parts(sku_id)]
            result[sku_id] = channel_bundle_stock(items, left.get(sku_id))
        else:
            result[sku_id] = channel_stock(shared(sku_id), left.get(sku_id))
    return result
