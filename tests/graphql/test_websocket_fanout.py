"""One event, many subscribers: a shared event is executed once per document, variables and caller."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncGenerator
from types import SimpleNamespace
from typing import cast

import pytest
import strawberry
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

from config import Settings
from domain.access import ANONYMOUS, Principal, Role
from schema.context import Context
from schema.live import SharedEvent
from tests.graphql.test_websocket import TRANSPORT_WS, acknowledged, connected, receive
from transport.operations import Operations
from transport.websocket import GraphQLWebSocket

TICKS = "subscription Ticks($prefix: String!) { ticks { n label(prefix: $prefix) } }"
PLAIN_TICKS = "subscription { plainTicks { n label(prefix: \"#\") } }"

executions: list[str] = []


@strawberry.type
class Tick(SharedEvent):
    n: int

    @strawberry.field
    def label(self, prefix: str) -> str:
        executions.append(f"{prefix}{self.n}")
        return f"{prefix}{self.n}"


@strawberry.type
class PlainTick:
    n: int

    @strawberry.field
    def label(self, prefix: str) -> str:
        executions.append(f"{prefix}{self.n}")
        return f"{prefix}{self.n}"


class Ticker:
    """A feed handing the same object to every subscriber, as the stock feed does."""

    def __init__(self) -> None:
        self.inboxes: set[asyncio.Queue[object]] = set()

    async def follow(self) -> AsyncGenerator[object, None]:
        inbox: asyncio.Queue[object] = asyncio.Queue()
        self.inboxes.add(inbox)
        try:
            while True:
                yield await inbox.get()
        finally:
            self.inboxes.discard(inbox)

    async def until(self, subscribers: int) -> None:
        while len(self.inboxes) < subscribers:
            await asyncio.sleep(0.01)

    def publish(self, event: object) -> None:
        for inbox in self.inboxes:
            inbox.put_nowait(event)


ticker = Ticker()


@strawberry.type
class Query:
    ping: str = "pong"


@strawberry.type
class Subscription:
    @strawberry.subscription
    async def ticks(self) -> AsyncGenerator[Tick, None]:
        async for tick in ticker.follow():
            yield cast(Tick, tick)

    @strawberry.subscription
    async def plain_ticks(self) -> AsyncGenerator[PlainTick, None]:
        async for tick in ticker.follow():
            yield cast(PlainTick, tick)


@pytest.fixture(scope="module")
def endpoint(settings: Settings) -> GraphQLWebSocket:
    async def context(websocket: WebSocket) -> Context:
        # A partner of the channel the test names, or anonymous.
        channel = websocket.headers.get("x-channel")
        principal = Principal(role=Role.PARTNER, channel=channel) if channel else ANONYMOUS
        return cast(Context, SimpleNamespace(settings=settings, request_id="ws-test", principal=principal))

    return GraphQLWebSocket(strawberry.Schema(query=Query, subscription=Subscription), context)


@pytest.fixture(scope="module")
def app(endpoint: GraphQLWebSocket) -> Starlette:
    return Starlette(routes=[WebSocketRoute("/graphql", endpoint)])


@pytest.fixture(autouse=True)
async def quiet() -> None:
    """The previous test's streams closed (they close after their sockets), nothing counted."""
    async with asyncio.timeout(5):
        while ticker.inboxes:
            await asyncio.sleep(0.01)
    gc.collect()
    executions.clear()


def _next(label: str, n: int, field: str = "ticks") -> dict[str, object]:
    return {"id": "t", "type": "next", "payload": {"data": {field: {"n": n, "label": label}}}}


async def test_subscribers_asking_the_same_of_a_shared_event_share_one_execution(app: Starlette) -> None:
    asked = ["$", "$", "$", "€"]
    async with (
        connected(app, TRANSPORT_WS) as first, connected(app, TRANSPORT_WS) as second,
        connected(app, TRANSPORT_WS) as third, connected(app, TRANSPORT_WS) as other,
    ):
        sockets = [first, second, third, other]
        for ws, prefix in zip(sockets, asked, strict=True):
            await acknowledged(ws)
            await ws.send_json({"id": "t", "type": "subscribe", "payload": {"query": TICKS, "variables": {"prefix": prefix}}})
        await ticker.until(4)

        ticker.publish(Tick(n=1))

        assert [await receive(ws) for ws in sockets] == [_next("$1", 1)] * 3 + [_next("€1", 1)]
        assert sorted(executions) == ["$1", "€1"]


async def test_callers_with_different_keys_do_not_share_a_result(app: Starlette) -> None:
    async with (
        connected(app, TRANSPORT_WS, headers={"x-channel": "taobao"}) as taobao,
        connected(app, TRANSPORT_WS, headers={"x-channel": "b2b-demo"}) as b2b,
    ):
        for ws in (taobao, b2b):
            await acknowledged(ws)
            await ws.send_json({"id": "t", "type": "subscribe", "payload": {"query": TICKS, "variables": {"prefix": "$"}}})
        await ticker.until(2)

        ticker.publish(Tick(n=2))

        assert [await receive(taobao), await receive(b2b)] == [_next("$2", 2)] * 2
        assert executions == ["$2", "$2"]


async def test_an_event_not_marked_shared_is_executed_for_each_subscriber(app: Starlette) -> None:
    async with connected(app, TRANSPORT_WS) as first, connected(app, TRANSPORT_WS) as second:
        for ws in (first, second):
            await acknowledged(ws)
            await ws.send_json({"id": "t", "type": "subscribe", "payload": {"query": PLAIN_TICKS}})
        await ticker.until(2)

        ticker.publish(PlainTick(n=3))

        assert [await receive(first), await receive(second)] == [_next("#3", 3, "plainTicks")] * 2
        assert executions == ["#3", "#3"]


async def test_a_shared_result_goes_when_its_event_does(app: Starlette, endpoint: GraphQLWebSocket) -> None:
    operations = cast(Operations, endpoint.schema)
    assert len(operations.shared) == 0
    tick = Tick(n=4)
    async with connected(app, TRANSPORT_WS) as first, connected(app, TRANSPORT_WS) as second:
        for ws in (first, second):
            await acknowledged(ws)
            await ws.send_json({"id": "t", "type": "subscribe", "payload": {"query": TICKS, "variables": {"prefix": "$"}}})
        await ticker.until(2)

        ticker.publish(tick)
        assert [await receive(first), await receive(second)] == [_next("$4", 4)] * 2
        assert len(operations.shared) == 1

    while ticker.inboxes:  # the subscribers' streams close after their sockets
        await asyncio.sleep(0.01)
    del tick
    gc.collect()
    assert len(operations.shared) == 0
