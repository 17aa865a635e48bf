"""The embedded broker: subscribers in this process only."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from broker.fanout import Fanout, OnDelivery


class MemoryBroker:
    def __init__(self, *, on_delivery: OnDelivery | None = None) -> None:
        self._fanout = Fanout(on_delivery=on_delivery)

    @property
    def live(self) -> bool:
        return True

    async def start(self) -> None:
        return None

    async def publish(self, topic: str, message: bytes) -> None:
        self._fanout.deliver(topic, message, time.time())

    @asynccontextmanager
    async def subscribe(self, topic: str) -> AsyncIterator[AsyncIterator[bytes]]:
        queue = self._fanout.add(topic)
        try:
            yield self._fanout.drain(topic, queue)
        finally:
            self._fanout.remove(topic, queue)

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None
