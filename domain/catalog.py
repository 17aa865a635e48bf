"""Catalog rules: SKU kinds and what a SKU has on hand to sell."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass


class SkuKind(enum.Enum):
    CARD_CODE = "CARD_CODE"  # one code, used once
    SERIAL = "SERIAL"  # one serial with a number of uses
    DIRECT_RECHARGE = "DIRECT_RECHARGE"  # top-up at a supplier, no code
    BUNDLE = "BUNDLE"  # a fixed set of other SKUs, all or nothing
    BLIND_BOX = "BLIND_BOX"  # one SKU drawn from a weighted pool (domain/draws.py)

    @property
    def is_code_backed(self) -> bool:
        return self in (SkuKind.CARD_CODE, SkuKind.SERIAL)


class CodeStatus(enum.Enum):
    AVAILABLE = "AVAILABLE"
    RESERVED = "RESERVED"
    SOLD = "SOLD"
    VOID = "VOID"


@dataclass(frozen=True, slots=True)
class StockFigures:
    available: int
    reserved: int
    presale: int = 0


NO_STOCK = StockFigures(available=0, reserved=0, presale=0)


def bundle_stock(components: Iterable[tuple[StockFigures, int]]) -> StockFigures:
    """A bundle is sellable only as often as its scarcest component allows.

    `components` pairs each component's stock with the quantity one bundle uses.
    A bundle with no components cannot be sold.
    """
    available: int | None = None
    for figures, per_bundle in components:
        if per_bundle <= 0:
            raise ValueError("a bundle component quantity must be positive")
        sets = figures.available // per_bundle
        available = sets if available is None else min(available, sets)
    return StockFigures(available=available or 0, reserved=0, presale=0)


# The quantity a blind box's item carries among "parts": drawn, not a fixed number per unit.
DRAWN = 0


def box_stock(items: Iterable[StockFigures]) -> StockFigures:
    """A blind box sells one unit of whichever item is drawn: as often as its items have units."""
    return StockFigures(available=sum(figures.available for figures in items), reserved=0, presale=0)


def channel_stock(shared: StockFigures, quota_left: int | None) -> StockFigures:
    """What one channel may sell: the shared pool, capped by what is left of its quota."""
    if quota_left is None:
        return shared
    quota_left = max(quota_left, 0)
    return StockFigures(
        available=min(shared.available, quota_left),
        reserved=shared.reserved,
        presale=min(shared.presale, max(quota_left - shared.available, 0)),
    )


def channel_bundle_stock(
    components: Iterable[tuple[StockFigures, int | None, int]], quota_left: int | None
) -> StockFigures:
    """What one channel may sell of a bundle: each component capped by what is left of the
    channel's quota of it, then the bundle by its own quota.

    `components` gives each component's shared stock, the channel's quota left on it (None:
    no cap), and the quantity one bundle uses. Selling a bundle takes from each component's
    quota, so a component quota of 2 lets a channel sell 2 bundles that use one each.
    """
    sets = bundle_stock((channel_stock(figures, left), per_bundle) for figures, left, per_bundle in components)
    return channel_stock(sets, quota_left)
