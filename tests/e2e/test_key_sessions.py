"""Two gateway processes sharing PostgreSQL and Redis: a key revoked through one closes the
WebSocket opened with it on the other (4403), within the recheck interval even when the
revocation was never announced."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from models import ApiKey
from services.core.database import Database
from tests.e2e.server import Server, running_gateways
from tests.e2e.shop import migrated_database, shop_settings, stock_shop
from tests.support import TEST_REDIS_URL, require_redis, without_cost

pytestmark = pytest.mark.e2e

BUDGET_SECONDS = 90
# The gateways recheck the keys of open sockets every second (QUANYI_KEY_RECHECK_SECONDS);
# a loaded, shared test machine gets two more before the test gives up.
CLOSED_WITHIN = 3.0

CREATE = """
mutation Create($input: CreateApiKeyInput!) { createApiKey(input: $input) { apiKey { id prefix } secret userErrors { code } } }
"""
REVOKE = "mutation Revoke($id: ID!) { revokeApiKey(id: $id) { userErrors { code } } }"
CHANNELS = "{ channels { code } }"


async def _gql(server: Server, query: str, variables: dict[str, Any], key: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        answer = await http.post("/graphql", json={"query": query, "variables": variables},
                                 headers={"authorization": f"Bearer {key}"})
    assert answer.status_code == 200, answer.text
    return without_cost(answer.json())


@contextlib.asynccontextmanager
async def _socket_with(server: Server, key: str) -> AsyncIterator[ClientConnection]:
    """A graphql-transport-ws connection on `server` initialised with the key, shown to work."""
    url = server.url.replace("http://", "ws://") + "/graphql"
    async with connect(url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {key}"}}))
        assert json.loads(await ws.recv()) == {"type": "connection_ack"}
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": CHANNELS}}))
        assert json.loads(await ws.recv()) == {"id": "1", "type": "next", "payload": {"data": {"channels": [{"code": "taobao"}]}}}
        assert json.loads(await ws.recv()) == {"id": "1", "type": "complete"}
        yield ws


async def _close_code(ws: ClientConnection) -> int | None:
    """The code the server closes with, if it does within CLOSED_WITHIN seconds."""
    try:
        async with asyncio.timeout(CLOSED_WITHIN):
            while True:
                await ws.recv()
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else None


@contextlib.asynccontextmanager
async def _two_gateways(tmp_path: Path) -> AsyncIterator[tuple[Server, Server, Database, str]]:
    if TEST_REDIS_URL is None:  # collected only when it is set (tests/e2e/conftest.py)
        pytest.fail("set QUANYI_TEST_REDIS_URL: the two gateways share announcements through Redis")
    await require_redis(TEST_REDIS_URL)
    async with asyncio.timeout(BUDGET_SECONDS), migrated_database(tmp_path) as url:
        settings = shop_settings(url)  # a broker prefix of its own: runs sharing Redis never meet
        db = Database.connect(settings)
        try:
            keys, _ = await stock_shop(db, settings)
            env = {"QUANYI_BROKER_PREFIX": settings.broker_prefix}
            async with running_gateways(url, settings.secret_key, [tmp_path / "a.log", tmp_path / "b.log"], env=env) as (a, b):
                yield a, b, db, keys.admin
                for server in (a, b):
                    assert "Traceback" not in server.output(), server.output()[-4000:]
        finally:
            await db.dispose()


async def _new_partner_key(server: Server, admin: str) -> dict[str, Any]:
    created = (await _gql(server, CREATE, {"input": {"role": "PARTNER", "channel": "taobao"}}, admin))["data"]["createApiKey"]
    assert created["userErrors"] == [], created
    return created


async def test_revoking_a_key_through_one_gateway_closes_its_socket_on_the_other(tmp_path: Path) -> None:
    async with _two_gateways(tmp_path) as (a, b, _, admin):
        created = await _new_partner_key(a, admin)
        async with _socket_with(b, created["secret"]) as ws:
            revoked = await _gql(a, REVOKE, {"id": created["apiKey"]["id"]}, admin)
            assert revoked == {"data": {"revokeApiKey": {"userErrors": []}}}

            assert await _close_code(ws) == 4403
        async with httpx.AsyncClient(base_url=b.url) as http:
            refused = await http.post("/graphql", json={"query": CHANNELS},
                                      headers={"authorization": f"Bearer {created['secret']}"})
        assert refused.status_code == 401


async def test_a_revocation_the_broker_never_carried_closes_the_socket_on_the_next_recheck(tmp_path: Path) -> None:
    async with _two_gateways(tmp_path) as (a, b, db, admin):
        created = await _new_partner_key(a, admin)
        async with _socket_with(a, created["secret"]) as on_a, _socket_with(b, created["secret"]) as on_b:
            # Revoked in the database alone, as if the announcement were lost in a Redis blip.
            async with db.sessions() as session, session.begin():
                await session.execute(
                    update(ApiKey).where(ApiKey.prefix == created["apiKey"]["prefix"]).values(revoked_at=datetime.now(UTC))
                )

            assert (await _close_code(on_a), await _close_code(on_b)) == (4403, 4403)
