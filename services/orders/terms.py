"""The terms an order is placed on, kept in memory: its channel (currency, hold caps) and,
per SKU on that channel, whether it is on sale, its purchase limit, its pricing and the
accounts its top-ups accept.

Every placeOrder needs them and they change only when an operator changes the catalog, a
price or a limit, so each process keeps what it read. A change commits, then the process
that made it drops its copy at once (`on_event`, before the event goes out) and every other
process when the broker delivers `catalog.changed` (`follow`). Stock moves publish
`catalog.changed` too, with the message `stock`; those leave the terms alone. A short
time-to-live covers a broker that lost a message; the channel prices' time windows are
evaluated at each order's own moment, so a promotion opens and closes on time whatever the
age of the copy.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from broker import Broker
from broker.follow import follow
from domain.catalog import SkuKind
from domain.limits import HoldLimit, PurchaseLimit
from domain.recharge_accounts import AccountFormat, parse_formats
from models import BlindBoxItem, BundleItem, Channel, Listing, Product, Sku
from models import HoldLimit as HoldLimitRow
from models import PurchaseLimit as PurchaseLimitRow
from services.core.events import CATALOG_CHANGED, STOCK_ONLY
from services.orders.limits import hold_of, limit_of
from services.pricing.prices import SkuPricing, pricing_for


@dataclass(frozen=True, slots=True)
class ChannelTerms:
    id: int
    code: str
    currency: str
    active: bool
    public: bool
    hold: HoldLimit | None  # the channel's own hold caps; None: the gateway's


@dataclass(frozen=True, slots=True)
class SkuTerms:
    """One SKU as an order on one channel sees it."""

    sku: Sku  # the row as read (detached): kind, currency, presale cap, account formats
    on_sale: bool  # an active SKU of an active product listed on the channel
    limit: PurchaseLimit | None
    pricing: SkuPricing
    # The accounts each top-up of the SKU accepts: its own if it is one, its components' if
    # it is a bundle; empty when it holds no top-up.
    top_ups: tuple[tuple[AccountFormat, ...], ...]


class Terms:
    """The terms of every channel and SKU orders name, read once and kept until a change.

    `ttl_seconds=0` keeps nothing: every call reads (callers without a process-wide copy).
    """

    def __init__(self, ttl_seconds: float = 10.0, size: int = 4096) -> None:
        self._ttl = ttl_seconds
        self._size = size
        self._channels: dict[str, tuple[float, ChannelTerms]] = {}
        self._skus: dict[tuple[int, int], tuple[float, SkuTerms]] = {}
        # Bumped by each change: a read that began before a change must not be kept.
        self._generation = 0
        # A copy past its time-to-live is read again by one order (with its own session),
        # while the others go on with the old copy: no stampede of reads, and no order
        # waiting for another's read while its session holds a pooled connection. Only a
        # change drops a copy outright.
        self._refreshing = 0  # reads in flight
        # A SKU read for the first time (a sale's SKU as its rush begins, every SKU after a
        # restart or a change) is read once: the orders that arrive meanwhile are answered by
        # that read, not by as many reads of their own. Each future gives what its read
        # found, or None when it failed and each waiter reads for itself.
        self._first_reads: dict[tuple[int, int], asyncio.Future[dict[int, SkuTerms] | None]] = {}

    # --- reads -----------------------------------------------------------------------------

    def cached_channel(self, code: str) -> ChannelTerms | None:
        found = self._channels.get(code)
        if found is not None and time.monotonic() - found[0] < self._ttl:
            return found[1]
        return None

    async def channel(self, session: AsyncSession, code: str) -> ChannelTerms | None:
        """The channel named `code`, active or not; None if there is none (not kept, so a
        flood of made-up codes costs reads, not memory)."""
        found = self._channels.get(code)
        if found is not None and (self._refreshing > 0 or time.monotonic() - found[0] < self._ttl):
            return found[1]
        self._refreshing += 1
        try:
            return await self._read_channel(session, code)
        finally:
            self._refreshing -= 1

    async def _read_channel(self, session: AsyncSession, code: str) -> ChannelTerms | None:
        generation = self._generation
        found = (
            await session.execute(
                select(Channel, HoldLimitRow)
                .outerjoin(HoldLimitRow, HoldLimitRow.channel_id == Channel.id)
                .where(Channel.code == code)
            )
        ).first()
        if found is None:
            return None
        row, hold = found
        terms = ChannelTerms(row.id, row.code, row.currency, row.active, row.public, hold_of(hold))
        if self._ttl > 0 and generation == self._generation:
            if len(self._channels) >= self._size:
                self._channels.clear()
            self._channels[code] = (time.monotonic(), terms)
        return terms

    async def skus(
        self, session: AsyncSession, channel_id: int, sku_ids: Collection[int], now: datetime
    ) -> dict[int, SkuTerms]:
        """The SKUs among `sku_ids` that exist, as the channel sells them; unknown ids are
        left out (and not kept)."""
        found: dict[int, SkuTerms] = {}
        missing: list[int] = []
        moment = time.monotonic()
        for sku_id in sku_ids:
            cached = self._skus.get((channel_id, sku_id))
            if cached is not None and (self._refreshing > 0 or moment - cached[0] < self._ttl):
                found[sku_id] = cached[1]
            else:
                missing.append(sku_id)
        if not missing:
            return found
        reads = [self._first_reads.get((channel_id, sku_id)) for sku_id in missing]
        if all(first is not None for first in reads):
            # Only SKUs other orders are reading for the first time: their reads answer.
            read = await _answered({first for first in reads if first is not None})
            if read is not None:
                found.update((sku_id, read[sku_id]) for sku_id in missing if sku_id in read)
                return found
        first_read = asyncio.get_running_loop().create_future() if self._ttl > 0 else None
        keys = [(channel_id, sku_id) for sku_id in missing if (channel_id, sku_id) not in self._first_reads]
        if first_read is not None:
            self._first_reads.update((key, first_read) for key in keys)
        self._refreshing += 1
        answer: dict[int, SkuTerms] | None = None
        try:
            answer = await self._read_skus(session, channel_id, missing, found, now)
            return answer
        finally:
            self._refreshing -= 1
            if first_read is not None:
                for key in keys:
                    if self._first_reads.get(key) is first_read:
                        del self._first_reads[key]
                first_read.set_result(dict(answer) if answer is not None else None)

    async def _read_skus(
        self, session: AsyncSession, channel_id: int, missing: list[int], found: dict[int, SkuTerms], now: datetime
    ) -> dict[int, SkuTerms]:
        generation = self._generation
        read = await _skus_of(session, channel_id, missing, now)
        found.update(read)
        if self._ttl > 0 and generation == self._generation:
            if len(self._skus) + len(read) > self._size:
                self._skus.clear()
            loaded = time.monotonic()
            self._skus.update({(channel_id, sku_id): (loaded, terms) for sku_id, terms in read.items()})
        return found

    # --- changes ---------------------------------------------------------------------------

    def forget(self) -> None:
        self._generation += 1
        self._channels.clear()
        self._skus.clear()
        self._first_reads.clear()  # an order from now on reads what the change left

    def on_event(self, topic: str, message: bytes = b"") -> None:
        """This process's own changes, heard before they go out on the broker."""
        if topic == CATALOG_CHANGED and message not in STOCK_ONLY:
            self.forget()

    async def follow(self, broker: Broker) -> None:
        """Forget the terms whenever the catalog, a price or a limit changes in any process."""
        await follow(broker, CATALOG_CHANGED, lambda message: self.on_event(CATALOG_CHANGED, message),
                     on_lost=self.forget, what="catalog change events (order terms)")


async def _answered(reads: set[asyncio.Future[dict[int, SkuTerms] | None]]) -> dict[int, SkuTerms] | None:
    """What the reads found together; None if one of them failed."""
    found: dict[int, SkuTerms] = {}
    for read in reads:
        answer = await asyncio.shield(read)
        if answer is None:
            return None
        found.update(answer)
    return found


async def _skus_of(
    session: AsyncSession, channel_id: int, sku_ids: list[int], now: datetime
) -> dict[int, SkuTerms]:
    """Three statements whatever the number of SKUs (four with a bundle among them)."""
    rows = {
        sku.id: (sku, bool(product_active) and listed is not None, limit)
        for sku, product_active, listed, limit in await session.execute(
            select(Sku, Product.active, Listing.position, PurchaseLimitRow)
            .join(Product, Product.id == Sku.product_id)
            .outerjoin(Listing, (Listing.product_id == Product.id) & (Listing.channel_id == channel_id))
            .outerjoin(
                PurchaseLimitRow, (PurchaseLimitRow.sku_id == Sku.id) & (PurchaseLimitRow.channel_id == channel_id)
            )
            .where(Sku.id.in_(sku_ids))
        )
    }
    if not rows:
        return {}
    skus = {sku_id: sku for sku_id, (sku, _, _) in rows.items()}
    prices = await pricing_for(session, [(channel_id, sku_id) for sku_id in skus], now, skus=skus)
    components: dict[int, list[str]] = {}
    bundles = [sku.id for sku in skus.values() if sku.kind is SkuKind.BUNDLE]
    if bundles:
        for bundle_id, formats in await session.execute(
            select(BundleItem.bundle_sku_id, Sku.account_formats)
            .join(Sku, Sku.id == BundleItem.component_sku_id)
            .where(BundleItem.bundle_sku_id.in_(bundles), Sku.kind == SkuKind.DIRECT_RECHARGE)
        ):
            components.setdefault(bundle_id, []).append(formats)
    boxes = [sku.id for sku in skus.values() if sku.kind is SkuKind.BLIND_BOX]
    if boxes:
        # A box may draw a top-up: its buyer names the account, as for any top-up it may hold.
        for box_id, formats in await session.execute(
            select(BlindBoxItem.box_sku_id, Sku.account_formats)
            .join(Sku, Sku.id == BlindBoxItem.item_sku_id)
            .where(BlindBoxItem.box_sku_id.in_(boxes), Sku.kind == SkuKind.DIRECT_RECHARGE)
        ):
            components.setdefault(box_id, []).append(formats)
    terms = {}
    for sku_id, (sku, listed, limit) in rows.items():
        own = [sku.account_formats] if sku.kind is SkuKind.DIRECT_RECHARGE else components.get(sku_id, [])
        terms[sku_id] = SkuTerms(
            sku=sku,
            on_sale=sku.active and listed,
            limit=limit_of(limit) if limit is not None else None,
            pricing=prices[(channel_id, sku_id)],
            top_ups=tuple(parse_formats(stored) for stored in own),
        )
    return terms
