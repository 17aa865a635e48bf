"""Public catalog answers are reused: dropped the moment a price or an operator's stock change
commits, and never served longer than the stock bound after they were computed, so stock that
orders move shows within it without orders emptying the cache."""

from __future__ import annotations

import asyncio
import contextlib
import time
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
from transport.graphql_http import GraphQLEndpoint
from services.core.events import CATALOG_CHANGED, STOCK_BY_OPERATOR, STOCK_BY_ORDERS, catalog_changed
from tests.graphql.catalog_support import DemoCatalog
from tests.graphql.conftest import Keys
from tests.support import GraphQLClient

NE15 = """
{ product(channel: "web", slug: "netease-one-card") { skus { code price { amount } } } }
"""
SET_PRICE = """
mutation Set($input: SetChannelPriceInput!) { setChannelPrice(input: $input) { userErrors { code } } }
"""


@contextlib.asynccontextmanager
async def _gateway(settings: Settings, bound: float) -> AsyncIterator[tuple[GraphQLClient, object]]:
    application = create_app(replace(settings, response_cache=True, response_cache_seconds=bound))
    async with LifespanManager(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://quanyi.test") as client:
            yield GraphQLClient(client), application


@pytest.fixture
async def cached(settings: Settings, db: Database) -> AsyncIterator[tuple[GraphQLClient, object]]:
    async with _gateway(settings, 60) as opened:
        yield opened


BOUND = 0.4  # seconds: short, so that the tests of the bound are quick


@pytest.fixture
async def bounded(settings: Settings, db: Database) -> AsyncIterator[tuple[GraphQLClient, object]]:
    async with _gateway(settings, BOUND) as opened:
        yield opened


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


async def test_stock_moved_by_orders_leaves_cached_answers_in_place(cached, db: Database) -> None:
    gql, application = cached
    first = await gql(NE15)
    await _set_base_price(db, "NE-15", 1470)  # behind the gateway's back: only the cache can hide it
    try:
        # An order reserved stock somewhere: during a sale, hundreds of these a second.
        await application.state.broker.publish(CATALOG_CHANGED, STOCK_BY_ORDERS)
        await asyncio.sleep(0.05)
        assert _price(await gql(NE15), "NE-15") == _price(first, "NE-15") == "14.80"
    finally:
        await _set_base_price(db, "NE-15", 1480)


async def test_stock_an_operator_moves_drops_cached_answers_at_once(cached, db: Database) -> None:
    gql, application = cached
    await gql(NE15)
    await _set_base_price(db, "NE-15", 1470)
    try:
        await application.state.broker.publish(CATALOG_CHANGED, STOCK_BY_OPERATOR)  # codes imported
        for _ in range(100):
            if _price(await gql(NE15), "NE-15") == "14.70":
                break
            await asyncio.sleep(0.01)
        assert _price(await gql(NE15), "NE-15") == "14.70"
    finally:
        await _set_base_price(db, "NE-15", 1480)


async def test_no_cached_answer_is_served_past_the_bound_after_a_change(bounded, db: Database) -> None:
    gql, _ = bounded
    await gql(NE15)
    await _set_base_price(db, "NE-15", 1470)  # no event at all: a change the broker never carried
    changed = time.monotonic()
    try:
        await asyncio.sleep(BOUND - (time.monotonic() - changed) + 0.02)
        assert _price(await gql(NE15), "NE-15") == "14.70"
    finally:
        await _set_base_price(db, "NE-15", 1480)


async def test_a_page_read_without_pause_through_changes_is_never_older_than_the_bound(bounded, db: Database) -> None:
    gql, _ = bounded
    # The price stands in for stock here: the test can change it behind the gateway's back,
    # with no event, so only the bound brings each new value in.
    history: list[tuple[float, str]] = []  # (set at, value), oldest first
    seen: list[tuple[float, str]] = []  # (read began, value shown)
    try:
        for step in range(12):
            fen = 1400 + step
            await _set_base_price(db, "NE-15", fen)
            history.append((time.monotonic(), f"{fen // 100}.{fen % 100:02d}"))
            for _ in range(10):
                began = time.monotonic()
                seen.append((began, _price(await gql(NE15), "NE-15")))
                await asyncio.sleep(0.01)
    finally:
        await _set_base_price(db, "NE-15", 1480)

    def current_within_bound(began: float) -> set[str]:
        """Values the database held at some moment from `BOUND` before the read on."""
        since = began - BOUND
        held_then = [value for at, value in history if at <= since][-1:]
        return {*held_then, *(value for at, value in history if at > since)}

    assert [(value, began) for began, value in seen if value not in current_within_bound(began)] == []


RENEWAL_BOUND = 2.0  # seconds: long enough that a loaded machine keeps the steps in their windows


@pytest.fixture
async def renewed(settings: Settings, db: Database) -> AsyncIterator[tuple[GraphQLClient, object]]:
    async with _gateway(settings, RENEWAL_BOUND) as opened:
        yield opened


async def test_a_renewal_under_way_holds_up_no_reader_and_never_outlives_the_bound(
    renewed, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    gql, _ = renewed
    await gql(NE15)  # cached, 14.80
    computed = time.monotonic()  # its computation began before this: ages below are at least as stated
    release = asyncio.Event()
    original = GraphQLEndpoint._run_document

    async def slow(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        await release.wait()  # the database is slow to answer the renewal
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(GraphQLEndpoint, "_run_document", slow)
    await _set_base_price(db, "NE-15", 1470)  # behind the gateway's back
    try:
        await asyncio.sleep(computed + RENEWAL_BOUND / 2 + 0.05 - time.monotonic())
        # Past the renewal point: the reader that starts the renewal and those after it are
        # served the entry, while the renewal waits for the database until released.
        for _ in range(3):
            assert _price(await asyncio.wait_for(gql(NE15), 0.5), "NE-15") == "14.80"
        await asyncio.sleep(computed + RENEWAL_BOUND + 0.05 - time.monotonic())
        # Past the bound the entry is never served: a reader waits for the renewal, which
        # began after the change, and gets what it read.
        late = asyncio.create_task(gql(NE15))
        await asyncio.sleep(0.05)
        assert not late.done()
        release.set()
        assert _price(await asyncio.wait_for(late, 5), "NE-15") == "14.70"
        assert _price(await gql(NE15), "NE-15") == "14.70"
    finally:
        release.set()
        await _set_base_price(db, "NE-15", 1480)


async def test_a_renewal_that_fails_leaves_the_next_reader_past_the_bound_to_read_the_database(
    renewed, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    gql, _ = renewed
    await gql(NE15)
    computed = time.monotonic()
    original = GraphQLEndpoint._run_document
    failures = 0

    async def failing_once(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        nonlocal failures
        if failures == 0:
            failures += 1
            raise ConnectionResetError("the database went away")
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(GraphQLEndpoint, "_run_document", failing_once)
    await _set_base_price(db, "NE-15", 1470)
    try:
        await asyncio.sleep(computed + RENEWAL_BOUND / 2 + 0.05 - time.monotonic())
        assert _price(await gql(NE15), "NE-15") == "14.80"  # served; its renewal fails beside it
        for _ in range(100):
            if failures:
                break
            await asyncio.sleep(0.01)
        assert failures == 1
        await asyncio.sleep(computed + RENEWAL_BOUND + 0.05 - time.monotonic())
        assert _price(await gql(NE15), "NE-15") == "14.70"
    finally:
        await _set_base_price(db, "NE-15", 1480)
