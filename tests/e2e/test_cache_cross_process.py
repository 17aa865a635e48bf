"""Two gateway processes with the response cache on, sharing Redis: what changes through one
reaches the other's cached catalog answers, a price at once and stock moved by orders within
the stock bound (QUANYI_RESPONSE_CACHE_SECONDS), though orders no longer drop cached answers."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from schema.relay import encode_id
from services.core.database import Database
from tests.e2e.server import Server, running_gateway
from tests.e2e.shop import migrated_database, order_input, shop_settings, stock_shop
from tests.support import TEST_REDIS_URL, require_redis

pytestmark = pytest.mark.e2e

BUDGET_SECONDS = 90
BOUND = 1.0  # the stock bound both gateways run with, in seconds

PAGE = """
query Page($id: ID!) {
  product(channel: "web", id: $id) { skus { code price { amount } stock { available reserved } } }
}
"""
PLACE = """
mutation Place($input: PlaceOrderInput!) { placeOrder(input: $input) { userErrors { code } } }
"""
SET_PRICE = """
mutation Set($input: SetChannelPriceInput!) { setChannelPrice(input: $input) { userErrors { code } } }
"""


async def _gql(http: httpx.AsyncClient, server: Server, query: str, variables: dict[str, Any], key: str | None = None) -> dict[str, Any]:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    answer = await http.post(f"{server.url}/graphql", json={"query": query, "variables": variables}, headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _sku(answer: dict[str, Any], code: str) -> dict[str, Any]:
    return next(s for s in answer["data"]["product"]["skus"] if s["code"] == code)


async def _two_gateways_test(tmp_path: Path, bound: float, body: Any) -> None:
    if TEST_REDIS_URL is None:  # collected only when it is set (tests/e2e/conftest.py)
        pytest.fail("set QUANYI_TEST_REDIS_URL: the two gateways share events through Redis")
    await require_redis(TEST_REDIS_URL)
    async with asyncio.timeout(BUDGET_SECONDS), migrated_database(tmp_path) as url:
        settings = shop_settings(url)
        db = Database.connect(settings)
        try:
            keys, shelf = await stock_shop(db, settings)
            env = {"QUANYI_BROKER_PREFIX": settings.broker_prefix, "QUANYI_RESPONSE_CACHE": "1",
                   "QUANYI_RESPONSE_CACHE_SECONDS": str(bound)}
            async with (
                running_gateway(url, settings.secret_key, tmp_path / "a.log", env=env) as a,
                running_gateway(url, settings.secret_key, tmp_path / "b.log", env=env) as b,
                httpx.AsyncClient(timeout=30) as http,
            ):
                await body(http, a, b, keys, shelf)
                for server in (a, b):
                    assert "Traceback" not in server.output(), server.output()[-4000:]
        finally:
            await db.dispose()


async def test_orders_through_one_gateway_show_in_the_others_cached_page_within_the_bound(tmp_path: Path) -> None:
    async def body(http: httpx.AsyncClient, a: Server, b: Server, keys: Any, shelf: Any) -> None:
        coins = await shelf.card_codes(20)
        page = {"id": encode_id("Product", shelf.product_id)}
        assert _sku(await _gql(http, b, PAGE, page), coins.code)["stock"] == {"available": 20, "reserved": 0}
        placed_at: list[float] = []  # when each order's answer came back, in order
        seen: list[tuple[float, int]] = []  # (read began, reserved shown)

        async def buy() -> None:
            for _ in range(6):
                answer = await _gql(http, a, PLACE, {"input": order_input((coins, 1))})
                assert answer["data"]["placeOrder"]["userErrors"] == [], answer
                placed_at.append(time.monotonic())
                await asyncio.sleep(0.15)

        async def read() -> None:
            end = time.monotonic() + 6 * 0.15 + BOUND + 0.3
            while time.monotonic() < end:
                began = time.monotonic()
                seen.append((began, _sku(await _gql(http, b, PAGE, page), coins.code)["stock"]["reserved"]))
                await asyncio.sleep(0.02)

        await asyncio.gather(buy(), read())

        # A read that began `BOUND` after an order was answered shows that order, or later ones.
        behind = [(reserved, sum(at <= began - BOUND for at in placed_at)) for began, reserved in seen
                  if reserved < sum(at <= began - BOUND for at in placed_at)]
        assert behind == []
        assert seen[-1][1] == 6
        # It was served from the cache meanwhile: some reads showed stock older than the last order before them.
        assert any(reserved < sum(at <= began for at in placed_at) for began, reserved in seen)

    await _two_gateways_test(tmp_path, BOUND, body)


async def test_a_price_set_through_one_gateway_drops_the_others_cached_page_at_once(tmp_path: Path) -> None:
    async def body(http: httpx.AsyncClient, a: Server, b: Server, keys: Any, shelf: Any) -> None:
        coins = await shelf.card_codes(5, price_fen=1000)
        page = {"id": encode_id("Product", shelf.product_id)}
        assert _sku(await _gql(http, b, PAGE, page), coins.code)["price"] == {"amount": "10.00"}

        answer = await _gql(http, a, SET_PRICE, {"input": {"channel": "web", "skuId": coins.gid, "amount": "9.50"}},
                            keys.admin)
        assert answer["data"]["setChannelPrice"]["userErrors"] == [], answer

        # The bound is long here: only the broker's event can bring the new price in.
        for _ in range(100):
            if _sku(await _gql(http, b, PAGE, page), coins.code)["price"] == {"amount": "9.50"}:
                break
            await asyncio.sleep(0.05)
        assert _sku(await _gql(http, b, PAGE, page), coins.code)["price"] == {"amount": "9.50"}

    await _two_gateways_test(tmp_path, 60.0, body)
