"""Clients run operations over WebSocket on /graphql, with graphql-transport-ws or legacy graphql-ws."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import replace
from datetime import timedelta
from types import SimpleNamespace
from typing import Any, cast
from unittest.mock import ANY

import httpx
import pytest
import strawberry
from asgi_lifespan import LifespanManager
from httpx_ws import AsyncWebSocketSession, WebSocketDisconnect, aconnect_ws
from httpx_ws.transport import ASGIWebSocketTransport
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

from config import Limits, Settings
from gateway import create_app
from schema.context import Context
from services.catalog import reads as catalog
from transport.websocket import GraphQLWebSocket

TRANSPORT_WS = "graphql-transport-ws"
LEGACY_WS = "graphql-ws"

PRODUCTS = '{ products(channel: "web", first: 2) { edges { node { name } } } }'
TWO_WEB_PRODUCTS = {
    "data": {
        "products": {"edges": [{"node": {"name": "Q币卡"}}, {"node": {"name": "腾讯视频 VIP"}}]}
    }
}
MINI_PRODUCTS = '{ products(channel: "mini", first: 4) { edges { node { name } } } }'
TOO_MANY_ALIASES = "{ a: __typename b: __typename c: __typename }"
COUNTDOWN = "subscription { countdown(start: 3) }"
BREAKDOWN = "subscription { breakdown }"


@contextlib.asynccontextmanager
async def connected(
    app: Any, subprotocol: str, headers: dict[str, str] | None = None
) -> AsyncIterator[AsyncWebSocketSession]:
    transport = ASGIWebSocketTransport(app)
    async with contextlib.AsyncExitStack() as stack:
        client = await stack.enter_async_context(
            httpx.AsyncClient(transport=transport, base_url="http://quanyi.test")
        )
        ws: AsyncWebSocketSession = await stack.enter_async_context(
            aconnect_ws("/graphql", client, subprotocols=[subprotocol], headers=headers or {})
        )
        yield ws


async def receive(ws: AsyncWebSocketSession) -> dict[str, Any]:
    """The next protocol message, past graphql-ws keep-alives."""
    while True:
        message = await ws.receive_json(timeout=5)
        if message != {"type": "ka"}:
            return message


async def acknowledged(ws: AsyncWebSocketSession) -> None:
    await ws.send_json({"type": "connection_init", "payload": {}})
    assert await receive(ws) == {"type": "connection_ack"}


async def closed_with(ws: AsyncWebSocketSession) -> tuple[int, str | None]:
    with pytest.raises(WebSocketDisconnect) as closing:
        await ws.receive_json(timeout=5)
    return closing.value.code, closing.value.reason


def socket_app(
    schema: strawberry.Schema, settings: Settings, endpoint: type[GraphQLWebSocket]
) -> Starlette:
    """/graphql over WebSocket alone, for a schema of the test's own."""

    async def context(websocket: WebSocket) -> Context:
        # The endpoint reads the settings and request id; the test schemas read nothing.
        return cast(Context, SimpleNamespace(settings=settings, request_id="ws-test"))

    return Starlette(routes=[WebSocketRoute("/graphql", endpoint(schema, context))])


# No Subscription type ships yet: a small schema of the tests' own holds the streaming path,
# through the same WebSocket endpoint, to the same rules.


@strawberry.type
class Query:
    ping: str = "pong"


@strawberry.type
class Subscription:
    @strawberry.subscription
    async def countdown(self, start: int) -> AsyncGenerator[int, None]:
        for n in range(start, 0, -1):
            yield n

    @strawberry.subscription
    async def breakdown(self) -> AsyncGenerator[int, None]:
        yield 1
        raise RuntimeError("broker at redis.internal went away")


# --- graphql-transport-ws ---


async def test_a_query_over_graphql_transport_ws_answers_next_then_complete(app: Any) -> None:
    async with connected(app, TRANSPORT_WS) as ws:
        assert ws.subprotocol == TRANSPORT_WS
        await acknowledged(ws)

        await ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": PRODUCTS}})

        assert await receive(ws) == {"id": "1", "type": "next", "payload": TWO_WEB_PRODUCTS}
        assert await receive(ws) == {"id": "1", "type": "complete"}


async def test_a_document_that_does_not_validate_is_an_error_message_with_a_code(app: Any) -> None:
    async with connected(app, TRANSPORT_WS) as ws:
        await acknowledged(ws)

        await ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": "{ nope }"}})

        assert await receive(ws) == {
            "id": "1",
            "type": "error",
            "payload": [
                {
                    "message": "Cannot query field 'nope' on type 'Query'.",
                    "locations": [{"line": 1, "column": 3}],
                    "extensions": {"code": "GRAPHQL_VALIDATION_FAILED"},
                }
            ],
        }


async def test_a_string_longer_than_its_input_takes_is_refused_before_the_subscription_starts(app: Any) -> None:
    async with connected(app, TRANSPORT_WS) as ws:
        await acknowledged(ws)

        await ws.send_json({"id": "1", "type": "subscribe", "payload": {
            "query": "subscription Stock($channel: String!) { stockChanged(channel: $channel) { skuId } }",
            "variables": {"channel": "w" * 65},
        }})

        assert await receive(ws) == {"id": "1", "type": "error", "payload": [
            {"message": "channel: at most 64 characters", "extensions": {"code": "BAD_USER_INPUT", "field": "channel"}},
        ]}


async def test_the_http_limits_apply_over_websocket(settings: Settings, db: object) -> None:
    app = create_app(replace(settings, limits=Limits(max_aliases=2)))
    async with LifespanManager(app), connected(app, TRANSPORT_WS) as ws:
        await acknowledged(ws)

        await ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": TOO_MANY_ALIASES}})

        assert await receive(ws) == {
            "id": "1",
            "type": "error",
            "payload": [
                {
                    "message": "3 aliases found. Allowed: 2",
                    "extensions": {"code": "GRAPHQL_VALIDATION_FAILED"},
                }
            ],
        }


async def test_an_unexpected_failure_is_masked_over_websocket(
    app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: object, **kwargs: object) -> object:
        raise RuntimeError("could not reach db.internal as quanyi:hunter2")

    monkeypatch.setattr(catalog, "product_page", broken)
    async with connected(app, TRANSPORT_WS) as ws:
        await acknowledged(ws)

        await ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": MINI_PRODUCTS}})

        assert await receive(ws) == {
            "id": "1",
            "type": "next",
            "payload": {
                "data": None,
                "errors": [
                    {
                        "message": "Internal server error",
                        "locations": [{"line": 1, "column": 3}],
                        "path": ["products"],
                        "extensions": {"code": "INTERNAL_SERVER_ERROR", "requestId": ANY},
                    }
                ],
            },
        }
        assert await receive(ws) == {"id": "1", "type": "complete"}


async def test_a_credential_we_cannot_verify_is_refused_at_connection_init(app: Any) -> None:
    async with connected(app, TRANSPORT_WS, headers={"authorization": "Bearer something"}) as ws:
        await ws.send_json({"type": "connection_init", "payload": {}})

        assert await closed_with(ws) == (4403, "Forbidden")


# --- legacy graphql-ws ---


async def test_a_query_over_legacy_graphql_ws_answers_data_then_complete(app: Any) -> None:
    async with connected(app, LEGACY_WS) as ws:
        assert ws.subprotocol == LEGACY_WS
        await acknowledged(ws)

        await ws.send_json({"id": "1", "type": "start", "payload": {"query": PRODUCTS}})

        assert await receive(ws) == {"id": "1", "type": "data", "payload": TWO_WEB_PRODUCTS}
        assert await receive(ws) == {"id": "1", "type": "complete"}


async def test_a_credential_we_cannot_verify_is_a_legacy_connection_error(app: Any) -> None:
    async with connected(app, LEGACY_WS, headers={"authorization": "Bearer something"}) as ws:
        await ws.send_json({"type": "connection_init", "payload": {}})

        assert await receive(ws) == {
            "type": "connection_error",
            "payload": {
                "message": "unknown or revoked key",
                "extensions": {"code": "UNAUTHENTICATED"},
            },
        }
        assert (await closed_with(ws))[0] == 1011


# --- the connection itself ---


async def test_an_unknown_subprotocol_is_refused(app: Any) -> None:
    async with connected(app, "mqtt") as ws:
        assert ws.subprotocol is None
        assert await closed_with(ws) == (4406, "Subprotocol not acceptable")


class Impatient(GraphQLWebSocket):
    connection_init_wait_timeout = timedelta(milliseconds=100)


async def test_no_connection_init_in_time_closes_with_4408(settings: Settings) -> None:
    app = socket_app(strawberry.Schema(query=Query), settings, Impatient)
    async with connected(app, TRANSPORT_WS) as ws:
        assert await closed_with(ws) == (4408, "Connection initialisation timeout")


async def test_the_default_connection_policy_is_in_force(settings: Settings) -> None:
    [route] = socket_app(strawberry.Schema(query=Query), settings, GraphQLWebSocket).routes
    endpoint = route.app  # type: ignore[attr-defined]

    assert (
        endpoint.keep_alive,
        endpoint.keep_alive_interval,
        endpoint.connection_init_wait_timeout,
        endpoint.max_subscriptions_per_connection,
    ) == (True, 15, timedelta(seconds=5), 20)


# --- subscriptions ---


@pytest.fixture(scope="module")
def streaming(settings: Settings) -> Starlette:
    return socket_app(
        strawberry.Schema(query=Query, subscription=Subscription), settings, GraphQLWebSocket
    )


@pytest.mark.parametrize(
    ("subprotocol", "start", "data"),
    [(TRANSPORT_WS, "subscribe", "next"), (LEGACY_WS, "start", "data")],
)
async def test_a_subscription_streams_each_event_then_completes(
    streaming: Starlette, subprotocol: str, start: str, data: str
) -> None:
    async with connected(streaming, subprotocol) as ws:
        await acknowledged(ws)

        await ws.send_json({"id": "c", "type": start, "payload": {"query": COUNTDOWN}})

        assert [await receive(ws) for _ in range(4)] == [
            {"id": "c", "type": data, "payload": {"data": {"countdown": 3}}},
            {"id": "c", "type": data, "payload": {"data": {"countdown": 2}}},
            {"id": "c", "type": data, "payload": {"data": {"countdown": 1}}},
            {"id": "c", "type": "complete"},
        ]


async def test_a_failing_event_source_ends_with_a_masked_error(streaming: Starlette) -> None:
    async with connected(streaming, TRANSPORT_WS) as ws:
        await acknowledged(ws)

        await ws.send_json({"id": "b", "type": "subscribe", "payload": {"query": BREAKDOWN}})

        assert [await receive(ws) for _ in range(3)] == [
            {"id": "b", "type": "next", "payload": {"data": {"breakdown": 1}}},
            {
                "id": "b",
                "type": "next",
                "payload": {
                    "data": None,
                    "errors": [
                        {
                            "message": "Internal server error",
                            "extensions": {"code": "INTERNAL_SERVER_ERROR", "requestId": "ws-test"},
                        }
                    ],
                },
            },
            {"id": "b", "type": "complete"},
        ]


# --- message size ---


@pytest.mark.parametrize("subprotocol", [TRANSPORT_WS, LEGACY_WS])
async def test_a_message_over_the_size_bound_closes_the_connection_with_1009(
    streaming: Starlette, subprotocol: str
) -> None:
    bound = GraphQLWebSocket.max_message_bytes
    async with connected(streaming, subprotocol) as ws:
        await ws.send_json({"type": "connection_init", "payload": {"padding": "x" * (bound - 100)}})
        assert await receive(ws) == {"type": "connection_ack"}

        await ws.send_json({"id": "c", "type": "subscribe", "payload": {"query": COUNTDOWN, "padding": "é" * (bound // 2)}})

        with pytest.raises(WebSocketDisconnect) as closing:
            await receive(ws)  # past graphql-ws keep-alives
        assert (closing.value.code, closing.value.reason) == (1009, f"Message larger than {bound} bytes")
