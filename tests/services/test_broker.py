"""Events reach every subscriber of their topic, in this process or through Redis."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from broker import Broker, MessagesLost, connect
from broker.fanout import Fanout
from tests.support import TEST_REDIS_URL

BACKENDS = ["memory"] + (["redis"] if TEST_REDIS_URL else [])


@pytest.fixture(params=BACKENDS)
async def broker(request: pytest.FixtureRequest) -> AsyncIterator[Broker]:
    url = TEST_REDIS_URL if request.param == "redis" else None
    instance = connect(url, prefix=f"quanyi-test-{uuid.uuid4().hex[:8]}:")
    await instance.start()
    yield instance
    await instance.close()


async def _next(messages: AsyncIterator[bytes]) -> bytes:
    return await asyncio.wait_for(anext(messages), timeout=5)


async def test_every_subscriber_of_a_topic_receives_each_message(broker: Broker) -> None:
    async with broker.subscribe("stock.web") as first, broker.subscribe("stock.web") as second:
        await broker.publish("stock.web", b'{"sku": 1}')
        await broker.publish("stock.web", b'{"sku": 2}')

        assert [await _next(first), await _next(first)] == [b'{"sku": 1}', b'{"sku": 2}']
        assert [await _next(second), await _next(second)] == [b'{"sku": 1}', b'{"sku": 2}']


async def test_a_subscriber_does_not_receive_other_topics(broker: Broker) -> None:
    async with broker.subscribe("stock.h5") as h5:
        await broker.publish("stock.web", b"web")
        await broker.publish("stock.h5", b"h5")

        assert await _next(h5) == b"h5"


async def test_a_subscriber_that_left_no_longer_receives(broker: Broker) -> None:
    async with broker.subscribe("orders") as gone:
        pass
    async with broker.subscribe("orders") as present:
        await broker.publish("orders", b"placed")
        assert await _next(present) == b"placed"
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(anext(gone), timeout=0.2)


async def test_a_subscriber_too_slow_to_keep_up_is_told_it_lost_messages_then_hears_the_next() -> None:
    fanout = Fanout(queue_size=2)
    inbox = fanout.add("stock.changed")
    messages = fanout.drain("stock.changed", inbox)
    fanout.deliver("stock.changed", b"first")
    assert await _next(messages) == b"first"
    for n in range(3):  # one more than it holds, untaken
        fanout.deliver("stock.changed", f"late {n}".encode())
    with pytest.raises(MessagesLost):
        await _next(messages)
    messages = fanout.drain("stock.changed", inbox)  # subscribed again
    waiting = asyncio.create_task(_next(messages))
    await asyncio.sleep(0)
    fanout.deliver("stock.changed", b"next")
    assert await waiting == b"next"
