"""Two gateway processes sharing Redis: a change made through one reaches a subscriber of the other."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from services.core.database import Database
from tests.e2e.server import Server, running_gateway
from tests.e2e.shop import (
    ShopKeys,
    StockedSku,
    migrated_database,
    order_input,
    shop_settings,
    stock_shop,
)
from tests.support import TEST_REDIS_URL, require_redis, without_cost

pytestmark = pytest.mark.e2e

BUDGET_SECONDS = 90

STOCK = """
subscription Stock($channel: String!, $skuIds: [ID!]) {
  stockChanged(channel: $channel, skuIds: $skuIds) { skuId channel available reserved }
}
"""
SET_QUOTA = """
mutation Quota($input: SetChannelQuotaInput!) { setChannelQuota(input: $input) { userErrors { code } } }
"""
PLACE = """
mutation Place($input: PlaceOrderInput!) {
  placeOrder(input: $input) { order { number status } userErrors { code } }
}
"""


async def _gql(server: Server, query: str, variables: dict[str, Any], key: str | None = None) -> dict[str, Any]:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        answer = await http.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
    assert answer.status_code == 200, answer.text
    return without_cost(answer.json())


@contextlib.asynccontextmanager
async def _subscribed(server: Server, sku: StockedSku) -> AsyncIterator[ClientConnection]:
    """A graphql-transport-ws subscriber of the SKU's web stock on `server`."""
    url = server.url.replace("http://", "ws://") + "/graphql"
    async with connect(url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert json.loads(await ws.recv()) == {"type": "connection_ack"}
        variables = {"channel": "web", "skuIds": [sku.gid]}
        await ws.send(json.dumps({"id": "s", "type": "subscribe", "payload": {"query": STOCK, "variables": variables}}))
        yield ws


async def _until_live(ws: ClientConnection, a: Server, keys: ShopKeys, sku: StockedSku) -> dict[str, Any]:
    """Change the SKU through `a` until the subscriber hears of it: its gateway is then
    listening on Redis. A quota above the pool leaves what is available as it was."""
    for _ in range(40):
        answer = await _gql(a, SET_QUOTA, {"input": {"channel": "web", "skuId": sku.gid, "quota": 1000}}, keys.admin)
        assert answer["data"]["setChannelQuota"]["userErrors"] == [], answer
        with contextlib.suppress(TimeoutError):
            return json.loads(await asyncio.wait_for(ws.recv(), timeout=0.5))
    raise AssertionError("the subscriber of the other gateway never heard of a change")


async def _drain(ws: ClientConnection) -> None:
    """Let the warm-up changes still in flight arrive."""
    while True:
        try:
            await asyncio.wait_for(ws.recv(), timeout=1.0)
        except TimeoutError:
            return


async def test_an_order_placed_through_one_gateway_reaches_a_stock_subscriber_of_the_other(tmp_path: Path) -> None:
    if TEST_REDIS_URL is None:  # collected only when it is set (tests/e2e/conftest.py)
        pytest.fail("set QUANYI_TEST_REDIS_URL: the two gateways share events through Redis")
    await require_redis(TEST_REDIS_URL)
    async with asyncio.timeout(BUDGET_SECONDS), migrated_database(tmp_path) as url:
        settings = shop_settings(url)  # a broker prefix of its own: runs sharing Redis never meet
        db = Database.connect(settings)
        try:
            keys, shelf = await stock_shop(db, settings)
            coins = await shelf.card_codes(5)
            env = {"QUANYI_BROKER_PREFIX": settings.broker_prefix}
            async with (
                running_gateway(url, settings.secret_key, tmp_path / "a.log", env=env) as a,
                running_gateway(url, settings.secret_key, tmp_path / "b.log", env=env) as b,
                _subscribed(b, coins) as ws,
            ):
                heard = await _until_live(ws, a, keys, coins)
                assert heard["payload"]["data"]["stockChanged"]["available"] == 5
                await _drain(ws)

                placed = await _gql(a, PLACE, {"input": order_input((coins, 1))})
                assert placed["data"]["placeOrder"]["userErrors"] == [], placed

                assert json.loads(await asyncio.wait_for(ws.recv(), timeout=10)) == {
                    "id": "s",
                    "type": "next",
                    "payload": {"data": {"stockChanged": {"skuId": coins.gid, "channel": "web", "available": 4, "reserved": 1}}},
                }
                for server in (a, b):
                    assert "Traceback" not in server.output(), server.output()[-4000:]
        finally:
            await db.dispose()
