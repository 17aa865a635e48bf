"""Types pushed to subscribers: stock and order status changes."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Hashable
from datetime import datetime
from typing import Any

import strawberry

from schema.orders import OrderStatus
from schema.relay import encode_id
from services.live.stock_feed import ChannelStock


class SharedEvent:
    """An event object a feed hands as is to many subscribers, never changed once made.

    The WebSocket transport executes a subscription's selection on such an event once for
    all the subscribers that sent the same document and variables with the same caller.
    """


class SharedStream:
    """A subscription's events, the same for every subscriber whose stream has the same `key`.

    `key` names everything that decides the events (the feed and what of it is followed), so
    the WebSocket transport may follow one such stream for a whole group of subscribers who
    asked the same document and variables with the same visibility, and execute each event
    once for all of them (transport/fanout.py). With `replays`, a subscriber who joins a
    stream already followed first hears its latest event (a state, such as a sale's, rather
    than a change). Iterated as it is, it is just its events.
    """

    __slots__ = ("_events", "key", "replays")

    def __init__(self, key: Hashable, events: AsyncGenerator[Any, None], *, replays: bool = False) -> None:
        self.key = key
        self._events = events
        self.replays = replays

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._events

    async def aclose(self) -> None:
        await self._events.aclose()


@strawberry.type(description="A channel's available-to-sell of one SKU after a change.")
class StockChange(SharedEvent):
    sku_id: strawberry.ID
    channel: str
    available: int
    reserved: int
    at: datetime

    @classmethod
    def from_stock(cls, stock: ChannelStock) -> StockChange:
        return cls(
            sku_id=encode_id("Sku", stock.sku_id), channel=stock.channel,
            available=stock.figures.available, reserved=stock.figures.reserved, at=stock.at,
        )


@strawberry.type
class OrderStatusChange:
    order_id: strawberry.ID
    status: OrderStatus  # type: ignore[valid-type]
    previous_status: OrderStatus | None  # type: ignore[valid-type]
    at: datetime
