"""Local fan-out: one bounded queue per subscriber, fed by whoever receives the message.

Each message travels with the wall-clock time it was published, so the time from publishing
to a subscriber taking it (the broker's lag, the subscriber's queue included) can be observed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable

log = logging.getLogger("quanyi.broker")

# Told of each message a subscriber takes: its topic and the seconds since it was published.
OnDelivery = Callable[[str, float], None]
Queued = tuple[float | None, bytes]  # (published at, wall clock; None: unknown), message


class Fanout:
    """Delivers each message to every local subscriber of its topic.

    Queues are bounded: a subscriber too slow to keep up loses its oldest
    messages rather than growing the process's memory without limit.
    """

    def __init__(self, queue_size: int = 256, on_delivery: OnDelivery | None = None) -> None:
        self._queue_size = queue_size
        self._queues: dict[str, set[asyncio.Queue[Queued]]] = defaultdict(set)
        self._on_delivery = on_delivery

    def has(self, topic: str) -> bool:
        return bool(self._queues.get(topic))

    def add(self, topic: str) -> asyncio.Queue[Queued]:
        queue: asyncio.Queue[Queued] = asyncio.Queue(self._queue_size)
        self._queues[topic].add(queue)
        return queue

    def remove(self, topic: str, queue: asyncio.Queue[Queued]) -> bool:
        """Forget a subscriber; True when it was the topic's last one."""
        queues = self._queues.get(topic)
        if queues is None:
            return False
        queues.discard(queue)
        if not queues:
            del self._queues[topic]
            return True
        return False

    def deliver(self, topic: str, message: bytes, published_at: float | None = None) -> None:
        for queue in self._queues.get(topic, ()):
            if queue.full():
                queue.get_nowait()
                log.warning("a subscriber of %s is too slow: dropped its oldest message", topic)
            queue.put_nowait((published_at, message))

    async def drain(self, topic: str, queue: asyncio.Queue[Queued]) -> AsyncIterator[bytes]:
        while True:
            published_at, message = await queue.get()
            if self._on_delivery is not None and published_at is not None:
                self._on_delivery(topic, time.time() - published_at)
            yield message
