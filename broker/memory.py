"""The embedded broker: subscribers in this process only."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from broker.fanout import Fanout, drain


class MemoryBroker:
    def __init__(self) -> None:
        self._fanout = Fanout()

    async def start(self) -> None:
        return None

    async def publish(self, topic: str, message: bytes) -> None:
        self._fanout.deliver(topic, message)

    @asynccontextmanager
    async def subscribe(self, topic: str) -> AsyncIterator[AsyncIterator[bytes]]:
        queue = self._fanout.add(topic)
        try:
            yield drain(queue)
        finally:
            self._fanout.remove(topic, queue)

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None
