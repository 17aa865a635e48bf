"""Types pushed to subscribers: stock and order status changes."""

from __future__ import annotations

from datetime import datetime

import strawberry

from schema.orders import OrderStatus


@strawberry.type(description="A channel's available-to-sell of one SKU after a change.")
class StockChange:
    sku_id: strawberry.ID
    channel: str
    available: int
    reserved: int
    at: datetime


@strawberry.type
class OrderStatusChange:
    order_id: strawberry.ID
    status: OrderStatus  # type: ignore[valid-type]
    previous_status: OrderStatus | None  # type: ignore[valid-type]
    at: datetime
