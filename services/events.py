"""Topics the services publish on after their transaction commits."""

from __future__ import annotations

from broker import Broker

# Anything that changes what a catalog read returns: products, prices, stock.
CATALOG_CHANGED = "catalog.changed"


async def catalog_changed(broker: Broker, reason: str) -> None:
    await broker.publish(CATALOG_CHANGED, reason.encode())
