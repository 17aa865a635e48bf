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
# The message of a catalog change in which only stock moved. Buyers move it (orders reserve,
# release, sell) many times a second in a sale: caches of catalog answers bound how late they
# show it rather than dropping on each one (transport/response_cache.py). An operator moves
# it (codes imported, a quota or counter set): caches drop their answers at once.
STOCK_BY_ORDERS = b"stock"
STOCK_BY_OPERATOR = b"stock-set"
STOCK_ONLY = frozenset({STOCK_BY_ORDERS, STOCK_BY_OPERATOR})


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


def stock_events(sku_ids: Iterable[int], *, by_orders: bool = False) -> list[tuple[str, bytes]]:
    """The catalog and stock events of a change that moved the stock of `sku_ids` (`by_orders`:
    an order's reservation, release or sale, rather than an operator's change)."""
    ids = sorted(set(sku_ids))
    if not ids:
        return []
    return [(STOCK_CHANGED, stock_message(ids)), (CATALOG_CHANGED, STOCK_BY_ORDERS if by_orders else STOCK_BY_OPERATOR)]


def stock_event(uow: UnitOfWork, sku_ids: Iterable[int], *, by_orders: bool = False) -> None:
    """Queue the catalog and stock events of a command that moved stock (see `stock_events`)."""
    for topic, message in stock_events(sku_ids, by_orders=by_orders):
        uow.publish(topic, message)
