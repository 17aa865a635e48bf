"""The sold-out gate: once the database has said a SKU has no stock left, the next buyers of
it on that channel are told so without another trip to the database.

In a flash sale most attempts come after the sell-out. Each would otherwise run the whole
order (pricing, the risk check, the write transaction) only to be rolled back. The gate
remembers, per channel and SKU, that an order found no stock at all, and refuses the next
attempts OUT_OF_STOCK from memory.

It may only refuse what the database would refuse, so it forgets quickly and listens:

- An entry lives CLOSED_SECONDS (one second). When it ends, one attempt goes through to the
  database (the probe) while the others are still refused; if the probe finds no stock the
  gate closes again, if it buys, its stock event opens it. Stock that came back without an
  event the gate heard (a missed broker message, Redis restarted, a row changed by hand) is
  on sale again within a second.
- Every stock event (`stock.changed`: a cancellation, an expiry, a code import, a quota
  change, a refund) opens the gate of its SKUs at once, in every process.
- A close is shared with the other processes through the broker (`stock.sold_out`), so with
  Redis one database refusal closes the SKU on every gateway. A close that an attempt decided
  before the last stock event of its SKU is not applied, here or elsewhere.
- A retry of an order already placed is not refused: the gate asks `PlacedKeys` whether the
  key placed an order (Redis when configured, else this process's memory).

Nothing here is a lock or a count: the database still decides every sale.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime

import orjson

from broker import Broker
from broker.follow import follow
from services.core.events import STOCK_CHANGED
from services.inventory.placed_keys import PlacedKeys

SOLD_OUT_TOPIC = "stock.sold_out"
CLOSED_SECONDS = 1.0

Gate = tuple[int, int]  # (channel id, SKU id)


class SoldOutGate:
    """One per process; `refuses` is a dictionary look-up."""

    def __init__(self, broker: Broker, placed: PlacedKeys, closed_seconds: float = CLOSED_SECONDS) -> None:
        self._broker = broker
        self.placed = placed
        self._seconds = closed_seconds
        self._closed: dict[Gate, tuple[float, float]] = {}  # (until (monotonic), since (wall clock))
        self._probing: dict[Gate, float] = {}  # a probe is out until (monotonic)
        self._opened: dict[int, float] = {}  # by SKU: when a stock event last opened it (wall clock)
        self._heard = b""  # the last stock change applied

    def refuses(self, channel_id: int, sku_ids: Sequence[int]) -> int | None:
        """The first of the SKUs the gate holds sold out on the channel; None lets the attempt
        through to the database (as the probe, when a closed entry has just run out)."""
        if not self._closed:
            return None
        now = time.monotonic()
        for sku_id in sku_ids:
            gate = (channel_id, sku_id)
            closed = self._closed.get(gate)
            if closed is None:
                continue
            if now < closed[0]:
                return sku_id
            if self._probing.get(gate, 0.0) > now:
                return sku_id  # another attempt is finding out
            self._probing[gate] = now + self._seconds
        return None

    async def sold_out(self, channel_id: int, sku_id: int, since: float) -> None:
        """The database found no stock of the SKU for an attempt that began at `since` (wall
        clock): close the gate here and in every other process."""
        if self._close(channel_id, sku_id, since):
            message = orjson.dumps({"channel": channel_id, "sku": sku_id, "since": since})
            await self._broker.publish(SOLD_OUT_TOPIC, message)

    def _close(self, channel_id: int, sku_id: int, since: float) -> bool:
        if self._opened.get(sku_id, 0.0) > since:
            return False  # stock may have come back after the attempt looked
        gate = (channel_id, sku_id)
        self._closed[gate] = (time.monotonic() + self._seconds, since)
        self._probing.pop(gate, None)
        return True

    def reopen(self, sku_ids: Sequence[int], at: float) -> None:
        """Stock of the SKUs changed at `at` (wall clock, when the change was made): open the
        gates closed on what attempts saw before it. A change heard late (the broker's
        queue behind under load) opens only the closes it predates."""
        for sku_id in sku_ids:
            if at > self._opened.get(sku_id, 0.0):
                self._opened[sku_id] = at
        if self._closed:
            for gate in [gate for gate, (_, since) in self._closed.items() if gate[1] in sku_ids and since < at]:
                del self._closed[gate]
                self._probing.pop(gate, None)
        if len(self._opened) > 100_000:  # old events no close can predate any more
            horizon = time.time() - 60
            self._opened = {sku: when for sku, when in self._opened.items() if when > horizon}

    def forget(self) -> None:
        """Events may have been missed: open every gate."""
        self._closed.clear()
        self._probing.clear()

    def on_event(self, topic: str, message: bytes = b"") -> None:
        """This process's own stock changes, heard before they go out on the broker."""
        if topic == STOCK_CHANGED:
            self._on_stock(message)

    def _on_stock(self, message: bytes) -> None:
        if message == self._heard:
            # Heard already: this process's own change, brought back by the broker. Applying
            # a change again opens nothing more, so it is not worked out again.
            return
        try:
            change = orjson.loads(message)
            skus, at = change["skus"], datetime.fromisoformat(change["at"]).timestamp()
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            self.forget()
            return
        self.reopen(skus, at)
        self._heard = message

    def _on_sold_out(self, message: bytes) -> None:
        try:
            told = orjson.loads(message)
            self._close(int(told["channel"]), int(told["sku"]), float(told["since"]))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return

    async def follow_stock(self) -> None:
        await follow(self._broker, STOCK_CHANGED, self._on_stock, on_lost=self.forget,
                     what="stock changes (sold-out gate)")

    async def follow_sold_out(self) -> None:
        await follow(self._broker, SOLD_OUT_TOPIC, self._on_sold_out, on_lost=lambda: None,
                     what="sold-out notices")
