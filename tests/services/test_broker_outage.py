"""Redis restarted under a broker: subscribers are told what they may have missed.

Pub/sub is at most once, so a restart can lose messages silently; the broker turns that
into `MessagesLost`, once when Redis goes and once when it is back and subscribed again, so
that each subscriber drops what it derived from messages and reads the current state. The
test runs its own `redis-server` (tests/outages.py), never the machine's shared one, and
only in the run that has Redis (QUANYI_TEST_REDIS_URL).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from broker import MessagesLost, connect
from tests.outages import throwaway_redis
from tests.support import TEST_REDIS_URL

pytestmark = pytest.mark.skipif(TEST_REDIS_URL is None, reason="the Redis run only (QUANYI_TEST_REDIS_URL)")


async def _next(messages: AsyncIterator[bytes]) -> bytes:
    return await asyncio.wait_for(anext(messages), timeout=10)


async def test_a_subscriber_is_told_when_redis_goes_and_again_when_it_is_back(tmp_path: Path) -> None:
    async with throwaway_redis(tmp_path) as redis:
        prefix = f"quanyi-outage-{uuid.uuid4().hex[:8]}:"
        broker, other = connect(redis.url, prefix=prefix), connect(redis.url, prefix=prefix)
        await broker.start()
        await other.start()
        try:
            # Given a subscriber hearing another process's messages
            async with broker.subscribe("keys.revoked") as messages:
                await asyncio.sleep(0.2)
                await other.publish("keys.revoked", b"before")
                assert await _next(messages) == b"before"

                # When Redis dies, the subscriber is told that messages may be lost
                redis.kill()
                with pytest.raises(MessagesLost):
                    await _next(messages)
            assert broker.live is False

            # While it is down, subscribing and publishing work, within this process
            async with broker.subscribe("keys.revoked") as messages:
                await broker.publish("keys.revoked", b"during")
                assert await _next(messages) == b"during"

                # When Redis is back, the subscriber is told again: what happened meanwhile elsewhere is unknown
                await redis.start()
                with pytest.raises(MessagesLost):
                    await _next(messages)
            assert broker.live is True

            # And messages from other processes flow again
            async with broker.subscribe("keys.revoked") as messages:
                for _ in range(50):  # the other process's publishing connection comes back on its next use
                    await other.publish("keys.revoked", b"after")
                    try:
                        assert await asyncio.wait_for(anext(messages), 0.2) == b"after"
                        break
                    except TimeoutError:
                        continue
                else:
                    raise AssertionError("no message after Redis came back")
        finally:
            await broker.close()
            await other.close()
