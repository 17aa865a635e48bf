"""Two gateway processes on one database: a buyer's limits hold whichever process each of their
concurrent orders reaches (PostgreSQL and Redis in the production run, SQLite beside it).

The database is checked directly afterwards: the answers could agree and still be wrong.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from models import Order, OrderLine
from services.core.database import Database
from tests.e2e.server import Server, running_gateway
from tests.e2e.shop import (
    Ledger,
    Shelf,
    ShopKeys,
    StockedSku,
    migrated_database,
    order_input,
    shop_settings,
    stock_shop,
)
from tests.support import without_cost

pytestmark = pytest.mark.e2e

BUDGET_SECONDS = 90

SET_LIMIT = """
mutation Limit($input: SetPurchaseLimitInput!) { setPurchaseLimit(input: $input) { userErrors { code } } }
"""
PLACE = """
mutation Place($input: PlaceOrderInput!) { placeOrder(input: $input) { order { number } userErrors { code } } }
"""
SPELLINGS = ["15899990000", "158 9999 0000", "+86 158-9999-0000", "0086 15899990000", "１５８９９９９００００"]


@dataclass
class Pair:
    a: Server
    b: Server
    db: Database
    keys: ShopKeys
    shelf: Shelf
    ledger: Ledger

    async def place(self, server: Server, sku: StockedSku, *, phone: str, address: str) -> str:
        """What one buyer is told: PLACED, or the refusal's code."""
        headers = {"x-forwarded-for": address}
        given = {"query": PLACE, "variables": {"input": order_input((sku, 1), buyer={"phone": phone})}}
        async with httpx.AsyncClient(base_url=server.url, timeout=BUDGET_SECONDS) as http:
            answer = without_cost((await http.post("/graphql", json=given, headers=headers)).json())
        placed = answer["data"]["placeOrder"]
        return placed["userErrors"][0]["code"] if placed["userErrors"] else "PLACED"

    async def orders_of(self, sku: StockedSku) -> int:
        async with self.db.sessions() as session:
            return int(await session.scalar(
                select(func.count(func.distinct(Order.id))).join(OrderLine, OrderLine.order_id == Order.id)
                .where(OrderLine.sku_id == sku.pk)
            ) or 0)


@pytest.fixture(scope="module")
async def pair(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Pair]:
    folder = tmp_path_factory.mktemp("limits-two-gateways")
    async with migrated_database(folder) as url:
        settings = shop_settings(url)
        db = Database.connect(settings)
        try:
            keys, shelf = await stock_shop(db, settings)
            # Addresses come from X-Forwarded-For, as behind a load balancer; 5 units per address.
            env = {"QUANYI_BROKER_PREFIX": settings.broker_prefix, "QUANYI_TRUSTED_PROXIES": "127.0.0.1",
                   "QUANYI_HOLD_LIMIT_PER_IP": "5"}
            async with (
                running_gateway(url, settings.secret_key, folder / "a.log", env=env) as a,
                running_gateway(url, settings.secret_key, folder / "b.log", env=env) as b,
            ):
                yield Pair(a, b, db, keys, shelf, Ledger(db))
                for server in (a, b):
                    assert "Traceback" not in server.output(), server.output()[-4000:]
        finally:
            await db.dispose()


async def test_one_per_buyer_sells_one_to_ten_concurrent_orders_through_two_gateways(pair: Pair) -> None:
    flash = await pair.shelf.card_codes(20)
    async with httpx.AsyncClient(base_url=pair.a.url) as http:
        limited = await http.post("/graphql", json={"query": SET_LIMIT, "variables": {"input": {
            "channel": "web", "skuId": flash.gid, "perBuyer": 1,
        }}}, headers={"authorization": f"Bearer {pair.keys.admin}"})
    assert without_cost(limited.json())["data"]["setPurchaseLimit"]["userErrors"] == []

    async with asyncio.timeout(BUDGET_SECONDS):
        told = await asyncio.gather(*(
            pair.place(pair.a if n % 2 else pair.b, flash, phone=SPELLINGS[n % 5], address=f"203.0.113.{n + 1}")
            for n in range(10)
        ))

    assert Counter(told) == Counter({"PLACED": 1, "PURCHASE_LIMIT": 9})
    assert await pair.orders_of(flash) == 1
    assert await pair.ledger.codes(flash) == {"AVAILABLE": 19, "RESERVED": 1}


async def test_one_address_holds_five_units_through_two_gateways(pair: Pair) -> None:
    coins = await pair.shelf.card_codes(50)

    async with asyncio.timeout(BUDGET_SECONDS):
        told = await asyncio.gather(*(
            pair.place(pair.a if n % 2 else pair.b, coins, phone=f"1370000{n:04d}", address="198.51.100.7")
            for n in range(40)
        ))
        someone_else = await pair.place(pair.a, coins, phone="13711112222", address="198.51.100.8")

    assert Counter(told) == Counter({"PLACED": 5, "HOLD_LIMIT": 35})
    assert someone_else == "PLACED"
    assert await pair.orders_of(coins) == 6
    assert await pair.ledger.codes(coins) == {"AVAILABLE": 44, "RESERVED": 6}
