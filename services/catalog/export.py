"""The catalog as records, in the order an import applies them and a stable order within
each type, so the same catalog always exports to the same bytes.

What is on sale or could be: archived objects (and what hangs on them, such as the
listings of an archived product) are left out, as are connection settings and stock.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.catalog import records
from services.catalog.state import CatalogState


async def catalog_records(session: AsyncSession) -> list[dict[str, Any]]:
    state = await CatalogState.everything(session)
    live = {
        "channel": [r for r in state.channels.values() if r.archived_at is None],
        "supplier": [r for r in state.suppliers.values() if r.archived_at is None],
        "brand": [r for r in state.brands.values() if r.archived_at is None],
        "category": [r for r in state.categories.values() if r.archived_at is None],
    }
    products = sorted((p for p in state.products.values() if p.archived_at is None and p.active), key=lambda p: p.slug)
    on_sale = {p.id for p in products}
    skus = sorted((s for s in state.skus.values() if s.archived_at is None and s.product_id in on_sale),
                  key=lambda s: s.code)
    out: list[dict[str, Any]] = []
    out += [records.channel_record(r) for r in sorted(live["channel"], key=lambda r: r.code)]
    out += [records.supplier_record(r) for r in sorted(live["supplier"], key=lambda r: r.code)]
    out += [records.brand_record(r) for r in sorted(live["brand"], key=lambda r: r.code)]
    out += [records.category_record(r) for r in sorted(live["category"], key=lambda r: r.code)]
    out += [state.product_record(p) for p in products]
    out += [state.sku_record(s) for s in skus]
    channels = {r.id: r.code for r in live["channel"]}
    slugs = {p.id: p.slug for p in products}
    listed = sorted(
        (channels[channel_id], position, slugs[product_id])
        for (channel_id, product_id), position in state.listings.items()
        if channel_id in channels and product_id in slugs
    )
    out += [records.listing_record(channel, slug, position) for channel, position, slug in listed]
    return out
