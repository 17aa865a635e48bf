"""Public catalog answers are reused, and dropped the moment a price or stock change commits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import update

from config import Settings
from gateway import create_app
from models import Sku
from services.core.database import Database
from services.core.events import catalog_changed
from tests.graphql.catalog_support import DemoCatalog
from tests.graphql.conftest import Keys
from tests.support import GraphQLClient

NE15 = """
{ product(channel: "web", slug: "netease-one-card") { skus { code price { amount } } } }
"""
SET_PRICE = """
mutation Set($input: SetChannelPriceInput!) { setChannelPrice(input: $input) { userErrors { code } } }
"""


@pytest.fixture
async def cached(settings: Settings, db: Database) -> AsyncIterator[tuple[GraphQLClient, object]]:
    application = create_app(replace(settings, response_cache=True, response_cache_seconds=60))
    async with LifespanManager(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://quanyi.test") as client:
            yield GraphQLClient(client), application


def _price(answer: dict, code: str) -> str:
    return next(s["price"]["amount"] for s in answer["data"]["product"]["skus"] if s["code"] == code)


async def _set_base_price(db: Database, code: str, fen: int) -> None:
    async with db.sessions() as session, session.begin():
        await session.execute(update(Sku).where(Sku.code == code).values(base_price_fen=fen))


async def test_a_repeated_catalog_read_is_served_from_the_cache(cached, db: Database) -> None:
    gql, _ = cached
    first = await gql(NE15)
    await _set_base_price(db, "NE-15", 1470)  # behind the gateway's back: no event
    try:
        second = await gql(NE15)
        assert _price(first, "NE-15") == _price(second, "NE-15") == "14.80"
    finally:
        await _set_base_price(db, "NE-15", 1480)


async def test_a_catalog_change_event_from_any_process_drops_cached_answers(cached, db: Database) -> None:
    gql, application = cached
    await gql(NE15)
    await _set_base_price(db, "NE-15", 1460)
    try:
        # Another gateway process committed a change and said so on the broker.
        await catalog_changed(application.state.broker, "price")
        for _ in range(100):
            if _price(await gql(NE15), "NE-15") == "14.60":
                break
            await asyncio.sleep(0.01)  # the event arrives asynchronously, as from Redis
        assert _price(await gql(NE15), "NE-15") == "14.60"
    finally:
        await _set_base_price(db, "NE-15", 1480)


async def test_a_price_change_through_the_gateway_is_visible_to_the_next_read(
    cached, keys: Keys, demo: DemoCatalog
) -> None:
    gql, _ = cached
    query = '{ product(channel: "mini", slug: "netease-one-card") { skus { code price { amount } } } }'
    before = await gql(query)
    await gql(SET_PRICE, {"input": {"channel": "mini", "skuId": demo.sku_id("NE-15"), "amount": "14.70"}}, key=keys.admin)

    after = await gql(query)

    assert _price(before, "NE-15") == "14.80"
    assert _price(after, "NE-15") == "14.70"


async def test_answers_are_not_shared_between_callers_of_different_channels(cached, keys: Keys) -> None:
    gql, _ = cached
    query = "{ channels { code } }"
    anonymous = await gql(query)
    partner = await gql(query, key=keys.taobao)

    assert [c["code"] for c in anonymous["data"]["channels"]] == ["web", "mini", "h5"]
    assert partner == {"data": {"channels": [{"code": "taobao"}]}}
