"""Redis restarted under two gateways in the middle of traffic.

Two real gateway processes share a database and a Redis of the test's own (a throwaway
`redis-server` on a free port, tests/outages.py: the machine's shared Redis serves other
runs and is never stopped). Budgets are on, so every request draws on Redis. A stock
subscriber and a buyer following their order are connected to gateway B; then Redis is
killed. While it is down both gateways answer `/readyz` 200 `degraded`, serve reads, place
and pay orders, and an operator's revocation through A works and is refused by B at once
(B verifies keys in the database while it cannot hear revocations). The stock change and
the payment made through A cannot reach B's subscribers; when Redis is back they receive
the current state instead of silently missing it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from services.core.database import Database
from tests.e2e.server import Server, running_gateways
from tests.e2e.shop import migrated_database, order_input, shop_settings, stock_shop
from tests.outages import throwaway_redis
from tests.support import without_cost

pytestmark = pytest.mark.e2e

STOCK = "subscription Stock($skuIds: [ID!]) { stockChanged(channel: \"web\", skuIds: $skuIds) { available reserved } }"
FOLLOW = "subscription Follow($id: ID!) { orderStatusChanged(orderId: $id) { status previousStatus } }"
PLACE = """
mutation Place($input: PlaceOrderInput!) { placeOrder(input: $input) { order { id status } accessToken userErrors { code } } }
"""
PAY = "mutation Pay($id: ID!, $ref: String!) { payOrder(orderId: $id, paymentReference: $ref) { userErrors { code } } }"
CREATE_KEY = """
mutation Create($input: CreateApiKeyInput!) { createApiKey(input: $input) { apiKey { id } secret userErrors { code } } }
"""
REVOKE = "mutation Revoke($id: ID!) { revokeApiKey(id: $id) { apiKey { revokedAt } userErrors { code } } }"
OWN_CHANNEL = "{ channels { code } }"
CATALOG = '{ products(channel: "web", first: 2) { edges { node { name } } } }'


async def _gql(server: Server, query: str, variables: dict[str, Any] | None = None, key: str | None = None) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        return await http.post("/graphql", json={"query": query, "variables": variables or {}}, headers=headers)


async def _data(server: Server, query: str, variables: dict[str, Any] | None = None, key: str | None = None) -> Any:
    answer = await _gql(server, query, variables, key)
    assert answer.status_code == 200, answer.text
    body = without_cost(answer.json())
    assert "errors" not in body, body
    return body["data"]


async def _ready(server: Server) -> tuple[int, dict[str, Any]]:
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        answer = await http.get("/readyz")
    body = answer.json()  # what the database and the broker say (other checks are not this test's)
    return answer.status_code, {name: body[name] for name in ("status", "database", "broker") if name in body}


async def _until(check: Callable[[], Awaitable[bool]], seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def _subscribed(server: Server, query: str, variables: dict[str, Any], token: str | None = None) -> AsyncIterator[ClientConnection]:
    url = server.url.replace("http://", "ws://") + "/graphql"
    async with connect(url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
        payload = {"authorization": f"Bearer {token}"} if token else {}
        await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
        assert json.loads(await ws.recv()) == {"type": "connection_ack"}
        await ws.send(json.dumps({"id": "s", "type": "subscribe", "payload": {"query": query, "variables": variables}}))
        yield ws


async def _heard(ws: ClientConnection, field: str, wanted: dict[str, Any], seconds: float = 15) -> None:
    """Read the subscriber's messages until one says `wanted`."""
    deadline = time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        assert left > 0, f"never heard {wanted}"
        with contextlib.suppress(TimeoutError):
            message = json.loads(await asyncio.wait_for(ws.recv(), left))
            if message["type"] == "next" and message["payload"]["data"][field] == wanted:
                return


async def test_gateways_ride_out_a_redis_restart_and_subscribers_catch_up(tmp_path: Path) -> None:
    async with asyncio.timeout(90), throwaway_redis(tmp_path) as redis, migrated_database(tmp_path) as url:
        settings = shop_settings(url, redis_url=redis.url)
        db = Database.connect(settings)
        try:
            keys, shelf = await stock_shop(db, settings)
            coins = await shelf.card_codes(30)
            env = {"QUANYI_REDIS_URL": redis.url, "QUANYI_BROKER_PREFIX": settings.broker_prefix,
                   "QUANYI_RATE_LIMITS": "1", "QUANYI_WORKER": "0"}
            logs = [tmp_path / "a.log", tmp_path / "b.log"]
            async with running_gateways(url, settings.secret_key, logs, env=env) as (a, b):
                # Given a partner key that B has verified (and keeps for a few seconds)
                created = (await _data(a, CREATE_KEY, {"input": {"role": "PARTNER", "channel": "taobao"}}, keys.admin))["createApiKey"]
                partner = created["secret"]
                assert await _data(b, OWN_CHANNEL, key=partner) == {"channels": [{"code": "taobao"}]}
                # And a buyer's unpaid order, followed on B, and a stock subscriber on B
                first = (await _data(a, PLACE, {"input": order_input((coins, 1))}))["placeOrder"]
                async with _subscribed(b, STOCK, {"skuIds": [coins.gid]}) as stock, \
                        _subscribed(b, FOLLOW, {"id": first["order"]["id"]}, first["accessToken"]) as follower:
                    # B hears A's changes through Redis (this also waits for B's subscription)
                    reserved = 1
                    for attempt in range(25):
                        await _data(a, PLACE, {"input": order_input((coins, 1), key=f"redis-restart-warm-{attempt:04d}")})
                        reserved += 1
                        with contextlib.suppress(AssertionError):
                            await _heard(stock, "stockChanged", {"available": 30 - reserved, "reserved": reserved}, 0.5)
                            break
                    available = 30 - reserved

                    # When Redis dies
                    redis.kill()

                    # Then both gateways still serve, and say they are degraded
                    for server in (a, b):
                        assert await _ready(server) == (200, {"status": "degraded", "database": "ok", "broker": "unreachable"})
                        assert len((await _data(server, CATALOG))["products"]["edges"]) == 2
                    # And an operator's revocation through A works, and B refuses the key at once
                    revoked = (await _data(a, REVOKE, {"id": created["apiKey"]["id"]}, keys.admin))["revokeApiKey"]
                    assert revoked["userErrors"] == [] and revoked["apiKey"]["revokedAt"] is not None

                    async def refused() -> bool:
                        return (await _gql(b, OWN_CHANNEL, key=partner)).status_code == 401

                    await _until(refused, 5)
                    # And orders are placed and paid (risk counters and budgets count per process meanwhile)
                    placed = (await _data(a, PLACE, {"input": order_input((coins, 1), key="redis-restart-during-outage")}))["placeOrder"]
                    assert placed["userErrors"] == []
                    paid = (await _data(a, PAY, {"id": first["order"]["id"], "ref": "outage-pay"}, keys.admin))["payOrder"]
                    assert paid["userErrors"] == []

                    # When Redis is back
                    await redis.start()

                    # Then B's subscribers get the current state of what changed while they could not hear
                    await _heard(stock, "stockChanged", {"available": available - 1, "reserved": reserved + 1})
                    await _heard(follower, "orderStatusChanged", {"status": "PAID", "previousStatus": "PENDING_PAYMENT"})
                    # And both gateways are ready again, with the key still refused everywhere
                    for server in (a, b):
                        async def healthy(server: Server = server) -> bool:
                            return await _ready(server) == (200, {"status": "ok", "database": "ok", "broker": "ok"})

                        await _until(healthy, 10)
                        assert (await _gql(server, OWN_CHANNEL, key=partner)).status_code == 401
                for server in (a, b):
                    assert "INTERNAL_SERVER_ERROR" not in server.output()
                    assert "Traceback" not in server.output(), server.output()[-3000:]
        finally:
            await db.dispose()
