"""Two gateway processes on one database under a rush of coupon hunters: a 30-use coupon gives
exactly 30 discounts, a one-per-buyer coupon one per buyer however the phone is typed, and
cancellations racing new redemptions give back exactly what they took (PostgreSQL and Redis in
the production run, SQLite beside it).

The database is checked directly afterwards: the answers could agree and still be wrong.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from models import Campaign, CouponRedemption, Order
from services.core.database import Database
from tests.e2e.server import Server, running_gateway
from tests.e2e.shop import Ledger, Shelf, ShopKeys, StockedSku, migrated_database, order_input, shop_settings, stock_shop
from tests.support import without_cost

pytestmark = pytest.mark.e2e

BUDGET_SECONDS = 90

CREATE = """
mutation Create($input: CreateCampaignInput!) { createCampaign(input: $input) { campaign { id } userErrors { code } } }
"""
PLACE = """
mutation Place($input: PlaceOrderInput!) {
  placeOrder(input: $input) { order { id discount { amount } } accessToken userErrors { code } }
}
"""
CANCEL = "mutation Cancel($id: ID!) { cancelOrder(orderId: $id) { userErrors { code } } }"
SPELLINGS = ["15899990000", "158 9999 0000", "+86 158-9999-0000", "0086 15899990000", "１５８９９９９００００"]


@dataclass
class Pair:
    a: Server
    b: Server
    db: Database
    keys: ShopKeys
    shelf: Shelf
    ledger: Ledger
    http: httpx.AsyncClient

    async def gql(self, server: Server, query: str, variables: dict[str, Any], key: str | None = None) -> dict[str, Any]:
        headers = {"authorization": f"Bearer {key}"} if key else {}
        response = await self.http.post(f"{server.url}/graphql", json={"query": query, "variables": variables}, headers=headers)
        assert response.status_code == 200, response.text
        return without_cost(response.json())

    async def campaign(self, sku: StockedSku, **fields: Any) -> None:
        given = {"name": "抢券", "channel": "web", "skuIds": [sku.gid], **fields}
        created = await self.gql(self.a, CREATE, {"input": given}, key=self.keys.admin)
        assert created["data"]["createCampaign"]["userErrors"] == []

    async def place(self, n: int, sku: StockedSku, code: str, phone: str) -> dict[str, Any]:
        given = {**order_input((sku, 1), buyer={"phone": phone}), "couponCode": code}
        answer = await self.gql(self.a if n % 2 else self.b, PLACE, {"input": given})
        assert answer.get("data"), answer
        return answer["data"]["placeOrder"]

    async def redemptions(self, code: str) -> tuple[int, int, int]:
        """(the campaign's count, its spent fen, redemptions held) as the database has them."""
        async with self.db.sessions() as session:
            campaign = await session.scalar(select(Campaign).where(Campaign.code == code))
            assert campaign is not None
            held = await session.scalar(
                select(func.count()).select_from(CouponRedemption)
                .where(CouponRedemption.campaign_id == campaign.id, CouponRedemption.released_at.is_(None))
            )
            discounted = await session.scalar(
                select(func.count()).select_from(Order).where(Order.campaign_id == campaign.id, Order.discount_fen > 0,
                                                               Order.status == "PENDING_PAYMENT")
            )
            assert held == discounted
            return campaign.redemptions, campaign.spent_fen, int(held or 0)


def outcome(placed: dict[str, Any]) -> str:
    return placed["userErrors"][0]["code"] if placed["userErrors"] else "PLACED"


@pytest.fixture(scope="module")
async def pair(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Pair]:
    folder = tmp_path_factory.mktemp("coupons-two-gateways")
    async with migrated_database(folder) as url:
        settings = shop_settings(url)
        db = Database.connect(settings)
        try:
            keys, shelf = await stock_shop(db, settings)
            env = {"QUANYI_BROKER_PREFIX": settings.broker_prefix, "QUANYI_WORKER": "0"}
            # 32 requests in flight at once (16 per gateway): real contention on the campaign row,
            # within a share of the test database's connections that other suites leave free.
            limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)
            async with (
                running_gateway(url, settings.secret_key, folder / "a.log", env=env) as a,
                running_gateway(url, settings.secret_key, folder / "b.log", env=env) as b,
                httpx.AsyncClient(limits=limits, timeout=BUDGET_SECONDS) as http,
            ):
                yield Pair(a, b, db, keys, shelf, Ledger(db), http)
                for server in (a, b):
                    assert "Traceback" not in server.output(), server.output()[-4000:]
                    assert "database is locked" not in server.output(), server.output()[-4000:]
        finally:
            await db.dispose()


async def test_300_hunters_of_a_30_use_coupon_through_two_gateways_get_exactly_30_discounts(pair: Pair) -> None:
    coins = await pair.shelf.card_codes(400)
    await pair.campaign(coins, code="RUSH30", amountOff="3.00", maxRedemptions=30)

    async with asyncio.timeout(BUDGET_SECONDS):
        told = await asyncio.gather(*(pair.place(n, coins, "rush30", f"1390000{n:04d}") for n in range(300)))

    assert Counter(outcome(a) for a in told) == {"PLACED": 30, "COUPON_LIMIT": 270}
    assert {a["order"]["discount"]["amount"] for a in told if a["order"]} == {"3.00"}
    assert await pair.redemptions("RUSH30") == (30, 9000, 30)
    assert await pair.ledger.codes(coins) == {"AVAILABLE": 370, "RESERVED": 30}  # a refused coupon reserved nothing


async def test_one_per_buyer_holds_across_phone_spellings_and_two_gateways(pair: Pair) -> None:
    coins = await pair.shelf.card_codes(40)
    await pair.campaign(coins, code="ONEPERBUYER", amountOff="1.00", perBuyerLimit=1)

    async with asyncio.timeout(BUDGET_SECONDS):
        told = await asyncio.gather(*(pair.place(n, coins, "oneperbuyer", SPELLINGS[n % 5]) for n in range(20)))

    assert Counter(outcome(a) for a in told) == {"PLACED": 1, "COUPON_LIMIT": 19}
    assert await pair.redemptions("ONEPERBUYER") == (1, 100, 1)
    assert await pair.ledger.codes(coins) == {"AVAILABLE": 39, "RESERVED": 1}


async def test_cancellations_racing_new_hunters_give_back_exactly_what_they_took(pair: Pair) -> None:
    coins = await pair.shelf.card_codes(200)
    await pair.campaign(coins, code="RACE10", amountOff="2.00", maxRedemptions=10)
    first = [await pair.place(n, coins, "RACE10", f"1360000{n:04d}") for n in range(10)]
    assert Counter(outcome(a) for a in first) == {"PLACED": 10}

    async def cancel(n: int, placed: dict[str, Any]) -> dict[str, Any]:
        return await pair.gql(pair.a if n % 2 else pair.b, CANCEL, {"id": placed["order"]["id"]}, key=placed["accessToken"])

    async with asyncio.timeout(BUDGET_SECONDS):
        # Each of five orders cancelled twice at once, through both gateways, among 60 new hunters.
        racing = await asyncio.gather(
            *(cancel(n, placed) for n, placed in enumerate(first[:5] * 2)),
            *(pair.place(n, coins, "RACE10", f"1350000{n:04d}") for n in range(60)),
        )
    hunters = Counter(outcome(a) for a in racing[10:])
    after = [await pair.place(n, coins, "RACE10", f"1340000{n:04d}") for n in range(10)]

    assert sum(1 for a in racing[:10] if a["data"]["cancelOrder"]["userErrors"] == []) >= 5
    assert hunters["PLACED"] + Counter(outcome(a) for a in after)["PLACED"] == 5
    assert await pair.redemptions("RACE10") == (10, 2000, 10)
