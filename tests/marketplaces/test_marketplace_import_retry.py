"""An operator retries a failed marketplace import by hand: once, only a FAILED one, and only
while the trade is still paid on the marketplace."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select, update

from models import MarketplaceConnection, Order
from tests.marketplaces.conftest import Market

RETRY = """
mutation Retry($id: ID!) {
  retryMarketplaceImport(id: $id) { trade { tid status reason orderNumber } userErrors { field code message } }
}
"""


@pytest.fixture
async def unmapped(shop: Market) -> AsyncIterator[Market]:
    """The connection's outer-id map put back as it was after the test."""
    async with shop.db.fresh_sessions() as session:
        before = await session.scalar(select(MarketplaceConnection.outer_ids))
    yield shop
    await _map(shop, dict(before or {}))


async def _map(shop: Market, outer_ids: dict[str, str]) -> None:
    async with shop.db.sessions() as session, session.begin():
        await session.execute(update(MarketplaceConnection).values(outer_ids=outer_ids))


async def _orders_of(shop: Market, tid: str) -> int:
    async with shop.db.fresh_sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(Order)
                                        .where(Order.idempotency_key == tid)) or 0)


async def _failed(shop: Market, outer_id: str) -> tuple[str, str]:
    tid = await shop.sell(outer_id, account="800123456", price="6.00")
    await shop.pull()
    trade = await shop.trade(tid)
    assert trade is not None and trade["status"] == "FAILED" and trade["reason"].startswith("UNKNOWN_OUTER_ID")
    return tid, trade["id"]


async def test_a_failed_import_is_retried_once_its_outer_id_is_mapped(unmapped: Market) -> None:
    shop = unmapped
    # Given a trade that failed: its outer id was not mapped
    tid, trade_id = await _failed(shop, "TB-GS60-NEW")
    # When the retry comes before the mapping, it fails again with the reason, and changes nothing else
    early = (await shop.gql(RETRY, {"id": trade_id}, key=shop.keys.admin))["data"]["retryMarketplaceImport"]
    assert early["trade"]["status"] == "FAILED" and [e["code"] for e in early["userErrors"]] == ["IMPORT_FAILED"]
    # When the outer id is mapped and an operator retries
    await _map(shop, {"TB-QB10": "QB-10", "TB-GS60-NEW": "GS-60"})
    retried = (await shop.gql(RETRY, {"id": trade_id}, key=shop.keys.admin))["data"]["retryMarketplaceImport"]
    # Then it is imported, fulfilled and reported like any trade
    assert (retried["trade"]["status"], retried["trade"]["reason"], retried["userErrors"]) == ("IMPORTED", None, [])
    await shop.settle()
    assert (await shop.order(tid))["status"] == "DELIVERED"
    assert (await shop.trade(tid))["deliveryReport"]["status"] == "REPORTED"
    # And a retry of the imported trade is refused and imports nothing more
    again = (await shop.gql(RETRY, {"id": trade_id}, key=shop.keys.admin))["data"]["retryMarketplaceImport"]
    assert (again["trade"], [e["code"] for e in again["userErrors"]]) == (None, ["INVALID_STATE"])
    assert await _orders_of(shop, tid) == 1


async def test_retries_at_once_import_the_trade_once(unmapped: Market) -> None:
    shop = unmapped
    tid, trade_id = await _failed(shop, "TB-GS60-RACE")
    await _map(shop, {"TB-GS60-RACE": "GS-60"})
    answers = await asyncio.gather(*(shop.gql(RETRY, {"id": trade_id}, key=shop.keys.admin) for _ in range(5)))
    codes = sorted(tuple(e["code"] for e in a["data"]["retryMarketplaceImport"]["userErrors"]) for a in answers)
    assert codes == [(), ("INVALID_STATE",), ("INVALID_STATE",), ("INVALID_STATE",), ("INVALID_STATE",)]
    await shop.settle()
    assert await _orders_of(shop, tid) == 1
    assert len(await shop.deliveries(tid)) == 1


async def test_a_trade_refunded_on_the_marketplace_meanwhile_is_not_imported(unmapped: Market) -> None:
    shop = unmapped
    tid, trade_id = await _failed(shop, "TB-GS60-GONE")
    await shop.shop.post("/control/refunds", json={"tid": tid})  # before delivery: the trade is closed there
    await _map(shop, {"TB-GS60-GONE": "GS-60"})
    answer = (await shop.gql(RETRY, {"id": trade_id}, key=shop.keys.admin))["data"]["retryMarketplaceImport"]
    assert [e["code"] for e in answer["userErrors"]] == ["TRADE_NOT_PAID"]
    assert (await shop.trade(tid))["status"] in ("FAILED", "CANCELLED")
    assert await _orders_of(shop, tid) == 0


async def test_only_a_failed_import_and_only_operators(shop: Market) -> None:
    tid = await shop.sell("GS-60", account="800123456", price="6.00")
    await shop.pull()
    imported = await shop.trade(tid)
    assert imported is not None and imported["status"] == "IMPORTED"
    refused = (await shop.gql(RETRY, {"id": imported["id"]}, key=shop.keys.admin))["data"]["retryMarketplaceImport"]
    assert [e["code"] for e in refused["userErrors"]] == ["INVALID_STATE"]
    cheap = await shop.sell("QB-10", price="0.01")  # sold below our price: its order cancelled
    await shop.pull()
    below = await shop.trade(cheap)
    assert below["status"] == "FAILED"
    kept = (await shop.gql(RETRY, {"id": below["id"]}, key=shop.keys.admin))["data"]["retryMarketplaceImport"]
    assert [e["code"] for e in kept["userErrors"]] == ["INVALID_STATE"]
    missing = await shop.gql(RETRY, {"id": "TWFya2V0cGxhY2VUcmFkZTo5OTk5OTk5"}, key=shop.keys.admin)  # MarketplaceTrade:9999999
    assert [e["code"] for e in missing["data"]["retryMarketplaceImport"]["userErrors"]] == ["NOT_FOUND"]
    for key in (shop.keys.taobao, shop.keys.b2b, shop.keys.web):
        answer = await shop.gql(RETRY, {"id": below["id"]}, key=key)
        assert answer["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    malformed = await shop.gql(RETRY, {"id": "not-an-id"}, key=shop.keys.admin)
    assert malformed["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
