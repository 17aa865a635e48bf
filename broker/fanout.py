"""Local fan-out: one bounded queue per subscriber, fed by whoever receives the message."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import AsyncIterator

log = logging.getLogger("quanyi.broker")


class Fanout:
    """Delivers each message to every local subscriber of its topic.

    Queues are bounded: a subscriber too slow to keep up loses its oldest
    messages rather than growing the process's memory without limit.
    """

    def __init__(self, queue_size: int = 256) -> None:
        self._queue_size = queue_size
        self._queues: dict[str, set[asyncio.Queue[bytes]]] = defaultdict(set)

    def has(self, topic: str) -> bool:
        return bool(self._queues.get(topic))

    def add(self, topic: str) -> asyncio.Queue[bytes]:
        queue: asyncio.Queue[bytes] = asyncio.Queue(self._queue_size)
        self._queues[topic].add(queue)
        return queue

    def remove(self, topic: str, queue: asyncio.Queue[bytes]) -> bool:
        """Forget a subscriber; True when it was the topic's last one."""
        queues = self._queues.get(topic)
        if queues is None:
            return False
        queues.discard(queue)
        if not queues:
            del self._queues[topic]
            return True
        return False

    def deliver(self, topic: str, message: bytes) -> None:
        for queue in self._queues.get(topic, ()):
            if queue.full():
                queue.get_nowait()
                log.warning("a subscriber of %s is too slow: dropped its oldest message", topic)
            queue.put_nowait(message)


async def drain(queue: asyncio.Queue[bytes]) -> AsyncIterator[bytes]:
    while True:
        yield await queue.get()
