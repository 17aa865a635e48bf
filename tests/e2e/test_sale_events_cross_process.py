"""Two gateway processes on one database: a sale scheduled and registered for through one holds
at the other, both warm for it before the start, and at the start the other sells to the
registered buyer only (PostgreSQL and Redis in the production run, SQLite beside it, where
processes share no broker and the sale book's time-to-live carries the news instead)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from services.core.database import Database
from tests.e2e.server import Server, running_gateway
from tests.e2e.shop import Ledger, Shelf, ShopKeys, migrated_database, order_input, shop_settings, stock_shop
from tests.support import TEST_REDIS_URL, without_cost

pytestmark = pytest.mark.e2e

SCHEDULE = """
mutation Schedule($input: ScheduleSaleInput!) { scheduleSale(input: $input) { sale { id } userErrors { code } } }
"""
REGISTER = """
mutation Register($input: RegisterForSaleInput!) { registerForSale(input: $input) { registered userErrors { code } } }
"""
PLACE = """
mutation Place($input: PlaceOrderInput!) { placeOrder(input: $input) { order { number } userErrors { code } } }
"""
WARM_SECONDS = 5
BOOK_SECONDS = 10  # without a shared broker, a process hears of a sale when its copy expires
# From scheduling to the start: the warm-up comes WARM_SECONDS before it, and without a shared
# broker the other process must have heard of the sale first.
LEAD_SECONDS = 12 if TEST_REDIS_URL else BOOK_SECONDS + 6


@dataclass
class Pair:
    a: Server
    b: Server
    keys: ShopKeys
    shelf: Shelf
    ledger: Ledger

    async def gql(self, server: Server, query: str, variables: dict[str, Any], key: str | None = None) -> dict[str, Any]:
        headers = {"authorization": f"Bearer {key}"} if key else {}
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            answer = await http.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
        return without_cost(answer.json())["data"]

    async def place(self, server: Server, sku: Any, phone: str) -> str:
        placed = (await self.gql(server, PLACE, {"input": order_input((sku, 1), buyer={"phone": phone})}))["placeOrder"]
        return placed["userErrors"][0]["code"] if placed["userErrors"] else "PLACED"


@pytest.fixture(scope="module")
async def pair(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Pair]:
    folder = tmp_path_factory.mktemp("sales-two-gateways")
    async with migrated_database(folder) as url:
        settings = shop_settings(url)
        db = Database.connect(settings)
        try:
            keys, shelf = await stock_shop(db, settings)
            env = {"QUANYI_BROKER_PREFIX": settings.broker_prefix, "QUANYI_SALE_WARM_SECONDS": str(WARM_SECONDS),
                   "QUANYI_LOG_FORMAT": "text"}
            async with (
                running_gateway(url, settings.secret_key, folder / "a.log", env=env) as a,
                running_gateway(url, settings.secret_key, folder / "b.log", env=env) as b,
            ):
                yield Pair(a, b, keys, shelf, Ledger(db))
                for server in (a, b):
                    assert "Traceback" not in server.output(), server.output()[-4000:]
        finally:
            await db.dispose()


async def _until(check: Any, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await check():
            return True
        await asyncio.sleep(0.2)
    return False


async def test_a_sale_scheduled_at_one_gateway_holds_at_the_other_and_both_warm_for_its_start(pair: Pair) -> None:
    sku = await pair.shelf.card_codes(200)
    assert await pair.place(pair.b, sku, "13900000001") == "PLACED"  # b knows the SKU without a sale
    start = datetime.now(UTC) + timedelta(seconds=LEAD_SECONDS)
    scheduled = await pair.gql(pair.a, SCHEDULE, {"input": {
        "channel": "web", "skuId": sku.gid, "startsAt": start.isoformat(),
        "registrationClosesAt": (start - timedelta(seconds=2)).isoformat(),
    }}, key=pair.keys.admin)
    assert scheduled["scheduleSale"]["userErrors"] == []
    registered = await pair.gql(pair.a, REGISTER, {"input": {
        "channel": "web", "skuId": sku.gid, "buyer": {"phone": "+86 158 0000 1111"}}})
    assert registered["registerForSale"] == {"registered": True, "userErrors": []}

    # Before the start b refuses too: at once through the broker, else when its copy expires.
    async def b_refuses() -> bool:
        return await pair.place(pair.b, sku, "15800001111") == "SALE_NOT_STARTED"

    assert await _until(b_refuses, 2 if TEST_REDIS_URL else BOOK_SECONDS + 2)
    held = await pair.ledger.codes(sku)
    assert await pair.place(pair.b, sku, "13900000003") == "SALE_NOT_STARTED"
    assert await pair.ledger.codes(sku) == held  # a refusal reserves nothing

    def warmed(server: Server) -> bool:
        return "warmed for sale" in server.output()

    async def warmed_before_the_start() -> bool:
        # With Redis the job's message reaches both; without, the process whose worker ran it.
        return (warmed(pair.a) and warmed(pair.b)) if TEST_REDIS_URL else (warmed(pair.a) or warmed(pair.b))

    assert await _until(warmed_before_the_start, LEAD_SECONDS)
    assert datetime.now(UTC) < start
    await asyncio.sleep(max(0.0, (start - datetime.now(UTC)).total_seconds()) + 0.2)

    assert await pair.place(pair.b, sku, "13900000002") == "NOT_REGISTERED"
    assert await pair.place(pair.b, sku, "0086 15800001111") == "PLACED"
    assert (await pair.ledger.codes(sku))["RESERVED"] == held["RESERVED"] + 1
