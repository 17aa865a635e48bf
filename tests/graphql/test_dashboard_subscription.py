"""Operators watch the live dashboard: a snapshot at once, a new one after orders, never more than one a second."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from httpx_ws import AsyncWebSocketSession

from gateway import create_app
from schema.analytics import DashboardSnapshot
from services.analytics.dashboard_feed import feed_for
from services.core.database import Database
from tests.e2e.shop import (
    Shelf,
    ShopKeys,
    StockedSku,
    migrated_database,
    order_input,
    shop_settings,
    stock_shop,
)
from tests.graphql.test_websocket import TRANSPORT_WS, connected, receive
from tests.support import GraphQLClient

DASHBOARD = """
subscription Dashboard {
  dashboard {
    at ordersLastMinute ordersLastHour riskInterceptions
    revenueLastMinute { amount currency } revenueLastHour { amount }
    topSkus { sku { id code } unitsSold revenue { amount } unitsOrdered }
    lowStock { sku { code } available }
  }
}
"""
PLACE = """
mutation Place($input: PlaceOrderInput!) { placeOrder(input: $input) { order { id } userErrors { code } } }
"""
PAY = "mutation Pay($id: ID!) { payOrder(orderId: $id, paymentReference: \"dash-1\") { userErrors { code } } }"


@dataclass(frozen=True)
class Site:
    """The gateway on a database of its own: the dashboard counts only this module's orders."""

    app: Any
    keys: ShopKeys
    shelf: Shelf
    gql: GraphQLClient


@pytest.fixture(scope="module")
async def site(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Site]:
    async with migrated_database(tmp_path_factory.mktemp("dashboard")) as url:
        settings = shop_settings(url)
        db = Database.connect(settings)
        try:
            keys, shelf = await stock_shop(db, settings)
            app = create_app(settings)
            async with LifespanManager(app):
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=transport, base_url="http://quanyi.test") as http:
                    yield Site(app, keys, shelf, GraphQLClient(http))
        finally:
            await db.dispose()


@pytest.fixture(scope="module")
async def sku(site: Site) -> StockedSku:
    return await site.shelf.card_codes(40, price_fen=1200)


@contextlib.asynccontextmanager
async def watching(site: Site, key: str | None) -> AsyncIterator[AsyncWebSocketSession]:
    async with connected(site.app, TRANSPORT_WS) as ws:
        payload = {"authorization": f"Bearer {key}"} if key else {}
        await ws.send_json({"type": "connection_init", "payload": payload})
        assert await receive(ws) == {"type": "connection_ack"}
        await ws.send_json({"id": "d", "type": "subscribe", "payload": {"query": DASHBOARD}})
        yield ws


async def snapshot_of(ws: AsyncWebSocketSession, timeout: float = 5) -> dict[str, Any]:
    message = await asyncio.wait_for(receive(ws), timeout)
    assert message["type"] == "next" and "errors" not in message["payload"], message
    return message["payload"]["data"]["dashboard"]


async def place(site: Site, sku: StockedSku, quantity: int = 1) -> str:
    answer = await site.gql(PLACE, {"input": order_input((sku, quantity))})
    assert answer["data"]["placeOrder"]["userErrors"] == [], answer
    return answer["data"]["placeOrder"]["order"]["id"]


@pytest.mark.parametrize(("caller", "code"), [(None, "UNAUTHENTICATED"), ("taobao", "FORBIDDEN"), ("web", "FORBIDDEN")])
async def test_only_operators_watch_the_dashboard(site: Site, caller: str | None, code: str) -> None:
    async with watching(site, getattr(site.keys, caller) if caller else None) as ws:
        message = await receive(ws)

    assert message["type"] == "next" and message["payload"]["data"] is None
    assert [e["extensions"]["code"] for e in message["payload"]["errors"]] == [code]


async def test_an_operator_sees_a_snapshot_at_once_and_another_after_an_order(site: Site, sku: StockedSku) -> None:
    async with watching(site, site.keys.admin) as ws:
        first = await snapshot_of(ws)
        order_id = await place(site, sku, 2)
        placed = await snapshot_of(ws, timeout=2.5)
        paid = await site.gql(PAY, {"id": order_id}, key=site.keys.admin)
        assert paid["data"]["payOrder"]["userErrors"] == []
        after_payment = await snapshot_of(ws, timeout=2.5)

    assert placed["ordersLastMinute"] == first["ordersLastMinute"] + 1
    assert placed["ordersLastHour"] == first["ordersLastHour"] + 1
    assert placed["revenueLastMinute"] == first["revenueLastMinute"]  # placed, not paid yet
    before = {entry["sku"]["code"]: entry["unitsOrdered"] for entry in first["topSkus"]}
    top = {"sku": {"id": sku.gid, "code": sku.code}, "unitsSold": 0, "revenue": {"amount": "0.00"},
           "unitsOrdered": before.get(sku.code, 0) + 2}
    assert top in placed["topSkus"]
    # Paid: the two units are sold, and the revenue is theirs.
    assert {**top, "unitsSold": 2, "revenue": {"amount": "24.00"}} in after_payment["topSkus"]
    assert {"sku": {"code": sku.code}, "available": 38} not in placed["lowStock"]  # 38 left: not low
    assert placed["riskInterceptions"] == first["riskInterceptions"] == 0
    minute = first["revenueLastMinute"]["amount"]
    assert after_payment["revenueLastMinute"] == {"amount": f"{float(minute) + 24:.2f}", "currency": "CNY"}
    assert after_payment["ordersLastMinute"] == placed["ordersLastMinute"]


async def test_a_burst_of_orders_pushes_at_most_one_snapshot_a_second(site: Site, sku: StockedSku) -> None:
    window = 3.0
    async with watching(site, site.keys.admin) as ws:
        first = await snapshot_of(ws)
        loop = asyncio.get_running_loop()
        started = loop.time()
        burst = asyncio.gather(*(place(site, sku) for _ in range(20)))
        seen: list[dict[str, Any]] = []
        with contextlib.suppress(TimeoutError):
            while (left := started + window - loop.time()) > 0:
                seen.append(await snapshot_of(ws, timeout=left))
        await burst
        # The feed catches up with the whole burst within a second of its end.
        last = seen[-1] if seen else first
        while last["ordersLastMinute"] < first["ordersLastMinute"] + 20:
            last = await snapshot_of(ws, timeout=2.5)

    assert 1 <= len(seen) <= window + 1
    assert last["ordersLastHour"] == first["ordersLastHour"] + 20


async def test_operators_share_one_feed_that_stops_when_the_last_leaves(site: Site) -> None:
    feed = feed_for(site.app.state.db, site.app.state.broker, DashboardSnapshot.of)
    async with watching(site, site.keys.admin) as one, watching(site, site.keys.admin) as other:
        mine, theirs = await snapshot_of(one), await snapshot_of(other)
        assert feed.running and feed.subscribers == 2
    for _ in range(100):
        if not feed.running:
            break
        await asyncio.sleep(0.02)

    assert mine == theirs  # one snapshot, computed once, the same `at` for both
    assert not feed.running and feed.subscribers == 0
