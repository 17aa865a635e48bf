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

from broker.base import MessagesLost

log = logging.getLogger("quanyi.broker")

# Told of each message a subscriber takes: its topic and the seconds since it was published.
OnDelivery = Callable[[str, float], None]
Queued = tuple[float | None, bytes]  # (published at, wall clock; None: unknown), message
# In a queue: messages may have been lost before this point (see `Fanout.lost`).
LOST: Queued = (None, b"")


class Fanout:
    """Delivers each message to every local subscriber of its topic.

    Queues are bounded: a subscriber too slow to keep up loses the messages it has not taken
    rather than growing the process's memory without limit, and is told so (MessagesLost),
    as it is when the broker's connection drops.
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

    def topics(self) -> list[str]:
        return list(self._queues)

    def deliver(self, topic: str, message: bytes, published_at: float | None = None) -> None:
        for queue in self._queues.get(topic, ()):
            self._put(queue, topic, (published_at, message))

    def lost(self) -> None:
        """Tell every subscriber that messages may have been missed: each one's iterator
        raises MessagesLost once it has taken what came before."""
        for topic, queues in self._queues.items():
            for queue in queues:
                self._put(queue, topic, LOST)

    def _put(self, queue: asyncio.Queue[Queued], topic: str, item: Queued) -> None:
        if queue.full():
            # What it has not taken is superseded by the current state, which it reads on LOST.
            while not queue.empty():
                queue.get_nowait()
            item = LOST
            log.warning("a subscriber of %s is too slow: dropped its messages, it reads the current state", topic)
        queue.put_nowait(item)

    async def drain(self, topic: str, queue: asyncio.Queue[Queued]) -> AsyncIterator[bytes]:
        while True:
            item = await queue.get()
            if item is LOST:
                raise MessagesLost(topic)
            published_at, message = item
            if self._on_delivery is not None and published_at is not None:
                self._on_delivery(topic, time.time() - published_at)
            yield message
