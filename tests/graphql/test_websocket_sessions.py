"""A WebSocket lives as long as its key: revoked or expired, the key's connections close with 4403.

Also the connection rules both protocols share: the connection_init timeout, a cap of
connections per client address, and a code on every error payload.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import strawberry
from asgi_lifespan import LifespanManager
from httpx_ws import AsyncWebSocketSession, WebSocketDisconnect
from sqlalchemy import update

from config import Settings
from gateway import create_app
from models import ApiKey
from services.core.database import Database
from tests.graphql.conftest import Keys
from tests.graphql.test_websocket import LEGACY_WS, TRANSPORT_WS, Query, connected, receive, socket_app
from tests.support import GraphQLClient
from transport.websocket import GraphQLWebSocket

CREATE = """
mutation Create($input: CreateApiKeyInput!) {
  createApiKey(input: $input) { apiKey { id prefix expiresAt } secret userErrors { field code } }
}
"""
REVOKE = "mutation Revoke($id: ID!) { revokeApiKey(id: $id) { userErrors { code } } }"
SET_BUDGET = """
mutation Budget($input: SetApiKeyBudgetInput!) { setApiKeyBudget(input: $input) { userErrors { code } } }
"""
TAOBAO_CHANNEL = "{ channels { code } }"
START = {TRANSPORT_WS: "subscribe", LEGACY_WS: "start"}
DATA = {TRANSPORT_WS: "next", LEGACY_WS: "data"}


async def _issue(gql: GraphQLClient, admin: str, expires_at: datetime | None = None) -> dict[str, Any]:
    given: dict[str, Any] = {"role": "PARTNER", "channel": "taobao", "name": "socket"}
    if expires_at is not None:
        given["expiresAt"] = expires_at.isoformat()
    created = (await gql(CREATE, {"input": given}, key=admin))["data"]["createApiKey"]
    assert created["userErrors"] == [], created
    return created


@contextlib.asynccontextmanager
async def _keyed_socket(app: Any, key: str, subprotocol: str = TRANSPORT_WS) -> AsyncIterator[AsyncWebSocketSession]:
    """A connection initialised with the key, shown to work by one operation."""
    async with connected(app, subprotocol) as ws:
        await ws.send_json({"type": "connection_init", "payload": {"authorization": f"Bearer {key}"}})
        assert await receive(ws) == {"type": "connection_ack"}
        await ws.send_json({"id": "1", "type": START[subprotocol], "payload": {"query": TAOBAO_CHANNEL}})
        assert await receive(ws) == {"id": "1", "type": DATA[subprotocol], "payload": {"data": {"channels": [{"code": "taobao"}]}}}
        assert await receive(ws) == {"id": "1", "type": "complete"}
        yield ws


async def _closing(ws: AsyncWebSocketSession, within: float = 8.0) -> tuple[int, str | None]:
    """The close code and reason, past whatever messages come first."""
    async with asyncio.timeout(within):
        while True:
            try:
                await ws.receive_json(timeout=within)
            except WebSocketDisconnect as closed:
                return closed.code, closed.reason


@pytest.fixture
async def other_process(settings: Settings) -> AsyncIterator[Any]:
    """Another gateway on the same database, as another worker would be. Without Redis it
    hears none of this one's announcements: what it learns, it learns from the database."""
    application = create_app(settings)
    async with LifespanManager(application):
        yield application


@pytest.mark.parametrize("subprotocol", [TRANSPORT_WS, LEGACY_WS])
async def test_revoking_a_key_closes_its_open_socket_with_4403(
    app: Any, gql: GraphQLClient, keys: Keys, subprotocol: str
) -> None:
    created = await _issue(gql, keys.admin)
    async with _keyed_socket(app, created["secret"], subprotocol) as ws:
        assert (await gql(REVOKE, {"id": created["apiKey"]["id"]}, key=keys.admin))["data"]["revokeApiKey"]["userErrors"] == []

        assert await _closing(ws) == (4403, "API key revoked or expired")


async def test_a_socket_of_another_process_closes_when_the_key_is_revoked(
    gql: GraphQLClient, other_process: Any, keys: Keys
) -> None:
    created = await _issue(gql, keys.admin)
    async with _keyed_socket(other_process, created["secret"]) as ws:
        await gql(REVOKE, {"id": created["apiKey"]["id"]}, key=keys.admin)

        assert (await _closing(ws))[0] == 4403


async def test_a_revocation_nobody_announced_still_closes_the_socket(
    gql: GraphQLClient, other_process: Any, keys: Keys, db: Database
) -> None:
    created = await _issue(gql, keys.admin)
    async with _keyed_socket(other_process, created["secret"]) as ws:
        # As if the broker lost the announcement: the row changes, nobody says so.
        async with db.sessions() as session, session.begin():
            await session.execute(
                update(ApiKey).where(ApiKey.prefix == created["apiKey"]["prefix"]).values(revoked_at=datetime.now(UTC))
            )

        assert (await _closing(ws))[0] == 4403
    # And the process that had the key cached refuses it over HTTP as well.
    transport = httpx.ASGITransport(app=other_process)
    async with httpx.AsyncClient(transport=transport, base_url="http://quanyi.test") as http:
        assert (await GraphQLClient(http).post(TAOBAO_CHANNEL, key=created["secret"])).status_code == 401


async def test_a_revocation_whose_announcement_fails_is_still_answered_and_takes_effect(
    app: Any, gql: GraphQLClient, other_process: Any, keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    created = await _issue(gql, keys.admin)

    async def broker_down(topic: str, message: bytes) -> None:
        raise ConnectionError("redis went away")

    async with _keyed_socket(other_process, created["secret"]) as ws:
        monkeypatch.setattr(app.state.broker, "publish", broker_down)
        revoked = await gql(REVOKE, {"id": created["apiKey"]["id"]}, key=keys.admin)
        monkeypatch.undo()

        assert revoked == {"data": {"revokeApiKey": {"userErrors": []}}}
        assert (await _closing(ws))[0] == 4403


async def test_a_key_that_expires_closes_its_socket_and_is_refused(app: Any, gql: GraphQLClient, keys: Keys) -> None:
    created = await _issue(gql, keys.admin, expires_at=datetime.now(UTC) + timedelta(seconds=3))
    async with _keyed_socket(app, created["secret"]) as ws:
        assert await _closing(ws) == (4403, "API key revoked or expired")

    assert (await gql.post(TAOBAO_CHANNEL, key=created["secret"])).status_code == 401


async def test_a_key_cannot_be_issued_already_expired(gql: GraphQLClient, keys: Keys) -> None:
    answer = await gql(CREATE, {"input": {"role": "PARTNER", "channel": "taobao",
                                          "expiresAt": "2001-01-01T00:00:00+08:00"}}, key=keys.admin)

    assert answer == {"data": {"createApiKey": {"apiKey": None, "secret": None,
                                                "userErrors": [{"field": "expiresAt", "code": "INVALID_EXPIRY"}]}}}


async def test_changing_a_keys_budget_keeps_its_sockets_open(app: Any, gql: GraphQLClient, keys: Keys) -> None:
    created = await _issue(gql, keys.admin)
    async with _keyed_socket(app, created["secret"]) as ws:
        budget = {"id": created["apiKey"]["id"], "maximum": 5000, "restoreRate": 100}
        assert (await gql(SET_BUDGET, {"input": budget}, key=keys.admin))["data"]["setApiKeyBudget"]["userErrors"] == []
        await asyncio.sleep(0.3)  # the announcement's recheck has run

        await ws.send_json({"id": "2", "type": "subscribe", "payload": {"query": TAOBAO_CHANNEL}})
        assert await receive(ws) == {"id": "2", "type": "next", "payload": {"data": {"channels": [{"code": "taobao"}]}}}


async def test_a_socket_authenticated_by_its_upgrade_header_closes_too(app: Any, gql: GraphQLClient, keys: Keys) -> None:
    created = await _issue(gql, keys.admin)
    async with connected(app, TRANSPORT_WS, headers={"authorization": f"Bearer {created['secret']}"}) as ws:
        await ws.send_json({"type": "connection_init", "payload": {}})
        assert await receive(ws) == {"type": "connection_ack"}
        await gql(REVOKE, {"id": created["apiKey"]["id"]}, key=keys.admin)

        assert (await _closing(ws))[0] == 4403


# --- connections per client address ---


@pytest.fixture
async def capped(settings: Settings, db: Database) -> AsyncIterator[Any]:
    application = create_app(replace(settings, ws_connections_per_ip=2))
    async with LifespanManager(application):
        yield application


@pytest.fixture
async def capped_behind_proxy(settings: Settings, db: Database) -> AsyncIterator[Any]:
    # The test client's peer address is 127.0.0.1: here it is our own proxy.
    application = create_app(replace(settings, ws_connections_per_ip=2, trusted_proxies="127.0.0.1"))
    async with LifespanManager(application):
        yield application


@pytest.mark.parametrize("subprotocol", [TRANSPORT_WS, LEGACY_WS])
async def test_an_address_over_its_cap_is_refused_with_4429_whatever_it_claims_to_be(
    capped: Any, subprotocol: str
) -> None:
    spoofed = [{"x-forwarded-for": f"198.51.100.{n}"} for n in range(3)]
    async with connected(capped, subprotocol, spoofed[0]), connected(capped, subprotocol, spoofed[1]):
        async with connected(capped, subprotocol, spoofed[2]) as third:
            assert third.subprotocol == subprotocol
            assert await _closing(third) == (4429, "Too many connections from this address")


async def test_a_closed_connection_frees_its_place(capped: Any) -> None:
    async with connected(capped, TRANSPORT_WS):
        async with connected(capped, TRANSPORT_WS) as second:
            await second.send_json({"type": "connection_init", "payload": {}})
            assert await receive(second) == {"type": "connection_ack"}
        await asyncio.sleep(0.1)
        async with connected(capped, TRANSPORT_WS) as again:
            await again.send_json({"type": "connection_init", "payload": {}})
            assert await receive(again) == {"type": "connection_ack"}


async def test_behind_a_trusted_proxy_each_client_address_has_its_own_cap(capped_behind_proxy: Any) -> None:
    one, other = {"x-forwarded-for": "198.51.100.1"}, {"x-forwarded-for": "198.51.100.2"}
    async with connected(capped_behind_proxy, TRANSPORT_WS, one), connected(capped_behind_proxy, TRANSPORT_WS, one):
        async with connected(capped_behind_proxy, TRANSPORT_WS, other) as ws:
            await ws.send_json({"type": "connection_init", "payload": {}})
            assert await receive(ws) == {"type": "connection_ack"}
        async with connected(capped_behind_proxy, TRANSPORT_WS, one) as third:
            assert (await _closing(third))[0] == 4429


# --- the legacy protocol's timeout, and codes on every error ---


class Impatient(GraphQLWebSocket):
    connection_init_wait_timeout = timedelta(milliseconds=100)
    max_subscriptions_per_connection = 0


async def test_no_connection_init_in_time_closes_a_legacy_socket_with_4408(settings: Settings) -> None:
    app = socket_app(strawberry.Schema(query=Query), settings, Impatient)
    async with connected(app, LEGACY_WS) as ws:
        assert await _closing(ws) == (4408, "Connection initialisation timeout")


@pytest.mark.parametrize(("subprotocol", "expected"), [
    (TRANSPORT_WS, [{"message": "Subscription limit reached", "extensions": {"code": "TOO_MANY_OPERATIONS"}}]),
    (LEGACY_WS, {"message": "Subscription limit reached", "extensions": {"code": "TOO_MANY_OPERATIONS"}}),
])
async def test_an_operation_over_the_connections_cap_is_an_error_with_a_code(
    settings: Settings, subprotocol: str, expected: object
) -> None:
    app = socket_app(strawberry.Schema(query=Query), settings, Impatient)
    async with connected(app, subprotocol) as ws:
        await ws.send_json({"type": "connection_init", "payload": {}})
        assert await receive(ws) == {"type": "connection_ack"}
        await ws.send_json({"id": "1", "type": START[subprotocol], "payload": {"query": "{ ping }"}})

        assert await receive(ws) == {"id": "1", "type": "error", "payload": expected}


async def test_a_legacy_connection_init_that_is_no_object_is_a_connection_error_with_a_code(app: Any) -> None:
    async with connected(app, LEGACY_WS) as ws:
        await ws.send_json({"type": "connection_init", "payload": "Bearer qy_x"})

        assert await receive(ws) == {"type": "connection_error", "payload": {
            "message": "connection_init takes an object as its payload", "extensions": {"code": "BAD_USER_INPUT"}}}
