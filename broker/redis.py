"""Redis pub/sub broker: messages reach subscribers in every gateway process.

Each process holds one pub/sub connection whatever its number of subscribers: a
reader task receives from Redis and fans out locally, so two thousand WebSocket
subscribers cost one Redis subscription per topic, not two thousand.

A message goes out with the wall-clock time it was published in front of it (`STAMP`, then
8 bytes), which the receiving process takes off: the delivery lag across processes. A
message without the stamp (an older publisher) is delivered as it came.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from broker.fanout import Fanout, OnDelivery

log = logging.getLogger("quanyi.broker")

STAMP = b"\x1eqy1"  # a record separator: no JSON message starts with it
_TIME = struct.Struct(">d")


def stamped(message: bytes, at: float) -> bytes:
    return STAMP + _TIME.pack(at) + message


def unstamped(data: bytes) -> tuple[float | None, bytes]:
    """(published at, message) of what arrived; (None, data) for a message without the stamp."""
    end = len(STAMP) + _TIME.size
    if data.startswith(STAMP) and len(data) >= end:
        return _TIME.unpack_from(data, len(STAMP))[0], data[end:]
    return None, data


class RedisBroker:
    def __init__(self, url: str, *, prefix: str = "quanyi:", on_delivery: OnDelivery | None = None) -> None:
        self._redis: Redis = Redis.from_url(url)
        self._prefix = prefix
        self._fanout = Fanout(on_delivery=on_delivery)
        self._pubsub: PubSub | None = None
        self._reader: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        await self._redis.ping()

    async def publish(self, topic: str, message: bytes) -> None:
        await self._redis.publish(self._prefix + topic, stamped(message, time.time()))

    @asynccontextmanager
    async def subscribe(self, topic: str) -> AsyncIterator[AsyncIterator[bytes]]:
        async with self._lock:
            first = not self._fanout.has(topic)
            queue = self._fanout.add(topic)
            if first:
                pubsub = await self._ensure_reader()
                await pubsub.subscribe(self._prefix + topic)
        try:
            yield self._fanout.drain(topic, queue)
        finally:
            async with self._lock:
                if self._fanout.remove(topic, queue) and self._pubsub is not None:
                    with suppress(Exception):
                        await self._pubsub.unsubscribe(self._prefix + topic)

    async def _ensure_reader(self) -> PubSub:
        if self._pubsub is None:
            self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        if self._reader is None or self._reader.done():
            self._reader = asyncio.create_task(self._read(self._pubsub), name="broker-reader")
        return self._pubsub

    async def _read(self, pubsub: PubSub) -> None:
        while True:
            try:
                if not pubsub.subscribed:
                    await asyncio.sleep(0.01)
                    continue
                message = await pubsub.get_message(timeout=1.0)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("lost the Redis subscription; reconnecting")
                await asyncio.sleep(0.5)
                continue
            if message is None or message.get("type") != "message":
                continue
            channel = message["channel"].decode()
            published_at, data = unstamped(message["data"])
            self._fanout.deliver(channel.removeprefix(self._prefix), data, published_at)

    async def ping(self) -> None:
        await self._redis.ping()

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with suppress(asyncio.CancelledError, Exception):
                await self._reader
        if self._pubsub is not None:
            with suppress(Exception):
                await self._pubsub.aclose()
        await self._redis.aclose()
