"""Topics the services publish on after their transaction commits."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import orjson

from broker import Broker

if TYPE_CHECKING:
    from services.core.unit_of_work import UnitOfWork

# Anything that changes what a catalog read returns: products, prices, stock.
CATALOG_CHANGED = "catalog.changed"


async def catalog_changed(broker: Broker, reason: str) -> None:
    await broker.publish(CATALOG_CHANGED, reason.encode())


# Supplier rows (connection settings included) changed: every process drops the adapters
# it built from them, and builds them again from the rows as they are now.
SUPPLIERS_CHANGED = "suppliers.changed"


# Stock of these SKUs moved (reservations, releases, imports, quota changes).
STOCK_CHANGED = "stock.changed"


def stock_message(sku_ids: Iterable[int], at: datetime | None = None) -> bytes:
    # `at`, when the change was made, travels with it: subscribers in every process agree
    # on it, and it is what a subscriber's latency is measured from.
    return orjson.dumps({"skus": sorted(set(sku_ids)), "at": at or datetime.now(UTC)})


def stock_events(sku_ids: Iterable[int]) -> list[tuple[str, bytes]]:
    """The catalog and stock events of a change that moved the stock of `sku_ids`."""
    ids = sorted(set(sku_ids))
    return [(STOCK_CHANGED, stock_message(ids)), (CATALOG_CHANGED, b"stock")] if ids else []


def stock_event(uow: UnitOfWork, sku_ids: Iterable[int]) -> None:
    """Queue the catalog and stock events of a command that moved stock."""
    for topic, message in stock_events(sku_ids):
        uow.publish(topic, message)
