"""Redis pub/sub broker: messages reach subscribers in every gateway process.

Each process holds one pub/sub connection whatever its number of subscribers: a
reader task receives from Redis and fans out locally, so two thousand WebSocket
subscribers cost one Redis subscription per topic, not two thousand.

A message goes out with the wall-clock time it was published in front of it (`STAMP`, then
8 bytes), which the receiving process takes off: the delivery lag across processes. A
message without the stamp (an older publisher) is delivered as it came.

Pub/sub is at most once: what is published while a process's connection is down never
reaches it. So when the reader loses Redis, and again when it has subscribed again, every
local subscriber is told (`MessagesLost`) and reads the current state; in between the
broker is not `live`. Publishing never raises: with Redis unreachable a message reaches this
process's own subscribers only. Subscribing never raises either: the reader subscribes the
topic when Redis is back.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

from redis.asyncio.client import PubSub

from broker.fanout import Fanout, OnDelivery
from broker.redis_client import UNREACHABLE, redis_client

log = logging.getLogger("quanyi.broker")

STAMP = b"\x1eqy1"  # a record separator: no JSON message starts with it
_TIME = struct.Struct(">d")
RETRY_SECONDS = 0.5  # between attempts to reach Redis again


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
        self._redis = redis_client(url)
        self._prefix = prefix
        self._fanout = Fanout(on_delivery=on_delivery)
        self._pubsub: PubSub = self._redis.pubsub(ignore_subscribe_messages=True)
        self._reader: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._live = False
        # Connections the pub/sub client made again by itself (redis-py retries a read once):
        # each is a gap in the messages, like a failure the reader sees.
        self._reconnects = 0
        self._reconnects_seen = 0
        self._watched: Any = None
        self._publish_failing = False

    @property
    def live(self) -> bool:
        return self._live

    async def start(self) -> None:
        try:
            await self._redis.ping()
        except UNREACHABLE as error:
            log.warning("Redis cannot be reached (%s): running degraded until it can", type(error).__name__)
            return
        self._live = True

    async def publish(self, topic: str, message: bytes) -> None:
        try:
            await self._redis.publish(self._prefix + topic, stamped(message, time.time()))
        except UNREACHABLE as error:
            if not self._publish_failing:
                log.warning("cannot publish on Redis (%s): events reach this process only", type(error).__name__)
            self._publish_failing = True
            self._fanout.deliver(topic, message, time.time())
            return
        if self._publish_failing:
            log.warning("publishing on Redis again")
            self._publish_failing = False

    @asynccontextmanager
    async def subscribe(self, topic: str) -> AsyncIterator[AsyncIterator[bytes]]:
        async with self._lock:
            first = not self._fanout.has(topic)
            queue = self._fanout.add(topic)
            if self._reader is None or self._reader.done():
                self._reader = asyncio.create_task(self._read(), name="broker-reader")
            if first and self._live:
                try:
                    await self._pubsub.subscribe(self._prefix + topic)
                except UNREACHABLE as error:
                    self._went_away(error)  # the reader subscribes it when Redis is back
        try:
            yield self._fanout.drain(topic, queue)
        finally:
            async with self._lock:
                if self._fanout.remove(topic, queue) and self._live:
                    with suppress(Exception):
                        await self._pubsub.unsubscribe(self._prefix + topic)

    async def _read(self) -> None:
        pubsub = self._pubsub
        while True:
            try:
                if not self._live:
                    await self._subscribe_again()
                if not pubsub.subscribed:
                    await asyncio.sleep(0.01)
                    continue
                self._watch(pubsub)
                message = await pubsub.get_message(timeout=1.0)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - any failure is a gap; try again shortly
                self._went_away(error)
                await asyncio.sleep(RETRY_SECONDS)
                continue
            if self._reconnects != self._reconnects_seen:
                self._reconnects_seen = self._reconnects
                log.warning("the Redis subscription was made again: messages may have been missed")
                self._fanout.lost()
            if message is None or message.get("type") != "message":
                continue
            channel = message["channel"].decode()
            published_at, data = unstamped(message["data"])
            self._fanout.deliver(channel.removeprefix(self._prefix), data, published_at)

    async def _subscribe_again(self) -> None:
        """Every topic wanted here, on a connection that works (raises while Redis is down)."""
        topics = self._fanout.topics()
        if topics:
            await self._pubsub.subscribe(*(self._prefix + topic for topic in topics))
        else:
            await self._redis.ping()
        self._live = True
        self._reconnects_seen = self._reconnects
        log.warning("Redis is back: subscribers read the current state")
        # Subscribed first, then told: what they read now is at least as new as the subscription.
        self._fanout.lost()

    def _went_away(self, error: BaseException) -> None:
        if not self._live:
            return
        self._live = False
        log.warning("lost Redis (%s): events reach this process only until it is back", type(error).__name__)
        self._fanout.lost()

    def _watch(self, pubsub: PubSub) -> None:
        connection = pubsub.connection
        if connection is not None and connection is not self._watched:
            connection.register_connect_callback(self._connected)
            self._watched = connection

    def _connected(self, connection: object) -> None:
        self._reconnects += 1

    async def ping(self) -> None:
        await self._redis.ping()

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with suppress(asyncio.CancelledError, Exception):
                await self._reader
        with suppress(Exception):
            await self._pubsub.aclose()
        await self._redis.aclose()
