"""Local fan-out: one bounded queue per subscriber, fed by whoever receives the message.

Each message travels with the wall-clock time it was published, so the time from publishing
to a subscriber taking it (the broker's lag, the subscriber's queue included) can be observed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Callable

from broker.base import MessagesLost

log = logging.getLogger("quanyi.broker")

# Told of each message a subscriber takes: its topic and the seconds since it was published.
OnDelivery = Callable[[str, float], None]
Queued = tuple[float | None, bytes]  # (published at, wall clock; None: unknown), message
# In a queue: messages may have been lost before this point (see `Fanout.lost`).
LOST: Queued = (None, b"")


class Inbox:
    """One subscriber's bounded queue: what Fanout needs of asyncio.Queue, with less work per
    message (every order's events pass through several). One reader, the subscriber's own."""

    __slots__ = ("_items", "_size", "_waiter")

    def __init__(self, size: int) -> None:
        self._items: deque[Queued] = deque()
        self._size = size
        self._waiter: asyncio.Future[None] | None = None

    def full(self) -> bool:
        return len(self._items) >= self._size

    def clear(self) -> None:
        self._items.clear()

    def put(self, item: Queued) -> None:
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    async def get(self) -> Queued:
        while not self._items:
            waiter = asyncio.get_running_loop().create_future()
            self._waiter = waiter
            try:
                await waiter
            finally:
                if self._waiter is waiter:  # cancelled while waiting
                    self._waiter = None
        return self._items.popleft()


class Fanout:
    """Delivers each message to every local subscriber of its topic.

    Queues are bounded: a subscriber too slow to keep up loses the messages it has not taken
    rather than growing the process's memory without limit, and is told so (MessagesLost),
    as it is when the broker's connection drops.
    """

    def __init__(self, queue_size: int = 256, on_delivery: OnDelivery | None = None) -> None:
        self._queue_size = queue_size
        self._queues: dict[str, set[Inbox]] = defaultdict(set)
        self._on_delivery = on_delivery

    def has(self, topic: str) -> bool:
        return bool(self._queues.get(topic))

    def add(self, topic: str) -> Inbox:
        queue = Inbox(self._queue_size)
        self._queues[topic].add(queue)
        return queue

    def remove(self, topic: str, queue: Inbox) -> bool:
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

    def _put(self, queue: Inbox, topic: str, item: Queued) -> None:
        if queue.full():
            # What it has not taken is superseded by the current state, which it reads on LOST.
            queue.clear()
            item = LOST
            log.warning("a subscriber of %s is too slow: dropped its messages, it reads the current state", topic)
        queue.put(item)

    async def drain(self, topic: str, queue: Inbox) -> AsyncIterator[bytes]:
        while True:
            item = await queue.get()
            if item is LOST:
                raise MessagesLost(topic)
            published_at, message = item
            if self._on_delivery is not None and published_at is not None:
                self._on_delivery(topic, time.time() - published_at)
            yield message
