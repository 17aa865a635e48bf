"""A real gateway under a rush of buyers: never oversold, one order per key, stock back once.

Each test talks HTTP to a uvicorn process on a database of its own, then checks the
database itself: the answers could agree with each other and still be wrong.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from broker import MemoryBroker
from domain.catalog import CodeStatus
from domain.orders import OrderStatus
from models import Allocation, CardCode, Order, OrderEvent, OrderLine
from services.core.database import Database
from services.orders.expiry import expire_once
from tests.e2e.server import Server, running_gateway
from tests.e2e.shop import (
    Ledger,
    Shelf,
    ShopKeys,
    migrated_database,
    order_input,
    shop_settings,
    stock_shop,
)

pytestmark = pytest.mark.e2e

# Each test, server start included, finishes well inside a minute or fails.
BUDGET_SECONDS = 60

PLACE = """
mutation Place($input: PlaceOrderInput!) {
  placeOrder(input: $input) { order { id number status } accessToken userErrors { field code } }
}
"""
PAY = """
mutation Pay($id: ID!, $reference: String!) { payOrder(orderId: $id, paymentReference: $reference) { userErrors { code } } }
"""
CANCEL = """
mutation Cancel($id: ID!) { cancelOrder(orderId: $id) { order { status } userErrors { code } } }
"""
TOP_UP = {"phone": "13800138000", "rechargeAccount": "qq:10001"}
from tests.support import without_cost


@dataclass
class Rush:
    """A running gateway, and the test's own view of its database."""

    server: Server
    db: Database
    keys: ShopKeys
    shelf: Shelf
    ledger: Ledger

    @contextlib.asynccontextmanager
    async def client(self) -> AsyncIterator[httpx.AsyncClient]:
        limits = httpx.Limits(max_connections=600, max_keepalive_connections=600)
        async with httpx.AsyncClient(base_url=self.server.url, limits=limits, timeout=BUDGET_SECONDS) as http:
            yield http

    def assert_clean_log(self) -> None:
        """No request failed inside the server: no lock timeouts, no unexpected errors."""
        output = self.server.output()
        assert "database is locked" not in output, output[-4000:]
        assert "unexpected error" not in output, output[-4000:]
        assert "Traceback" not in output, output[-4000:]


@contextlib.asynccontextmanager
async def rush_on(folder: Path, env: dict[str, str] | None = None) -> AsyncIterator[Rush]:
    async with migrated_database(folder) as url:
        settings = shop_settings(url)
        db = Database.connect(settings)
        try:
            keys, shelf = await stock_shop(db, settings)
            # Paid orders keep what they hold here: fulfilment (which sells it) has its own tests.
            environment = {"QUANYI_WORKER": "0", **(env or {})}
            async with running_gateway(url, settings.secret_key, folder / "gateway.log", env=environment) as server:
                yield Rush(server, db, keys, shelf, Ledger(db))
        finally:
            await db.dispose()


@pytest.fixture(scope="module")
async def rush(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Rush]:
    async with rush_on(tmp_path_factory.mktemp("rush")) as running:
        yield running


async def gql(http: httpx.AsyncClient, query: str, variables: dict[str, Any], key: str | None = None) -> dict[str, Any]:
    headers = {"accept": "application/graphql-response+json"}
    if key:
        headers["authorization"] = f"Bearer {key}"
    response = await http.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
    assert response.status_code == 200, response.text
    return without_cost(response.json())


async def place(http: httpx.AsyncClient, given: dict[str, Any]) -> dict[str, Any]:
    answer = await gql(http, PLACE, {"input": given})
    assert "errors" not in answer, answer
    return answer["data"]["placeOrder"]


def outcome(payload: dict[str, Any]) -> str:
    return "PLACED" if payload["order"] else ",".join(e["code"] for e in payload["userErrors"])


async def test_500_buyers_of_50_codes_get_exactly_50_orders(rush: Rush) -> None:
    coins = await rush.shelf.card_codes(50)

    async with asyncio.timeout(BUDGET_SECONDS), rush.client() as http:
        started = time.monotonic()
        answers = await asyncio.gather(*(place(http, order_input((coins, 1), key=f"rush-order-key-{n}")) for n in range(500)))
        elapsed = time.monotonic() - started
    print(f"\n500 concurrent placeOrder over HTTP: {elapsed:.2f} s")

    assert Counter(outcome(a) for a in answers) == {"PLACED": 50, "OUT_OF_STOCK": 450}
    placed = {a["order"]["number"] for a in answers if a["order"]}
    assert len(placed) == 50 and all(a["order"]["status"] == "PENDING_PAYMENT" for a in answers if a["order"])
    async with rush.db.sessions() as session:
        codes = (await session.execute(select(CardCode.id, CardCode.status, CardCode.order_line_id).where(CardCode.sku_id == coins.pk))).all()
        allocations = (await session.execute(
            select(Allocation.code_id, Allocation.line_id, Allocation.state).where(Allocation.sku_id == coins.pk)
        )).all()
        holders = (await session.execute(
            select(OrderLine.id, OrderLine.quantity, Order.number, Order.status).join(Order, Order.id == OrderLine.order_id)
            .where(OrderLine.sku_id == coins.pk)
        )).all()
    assert Counter(status for _, status, _ in codes) == {CodeStatus.RESERVED: 50}
    held_by = {code_id: line_id for code_id, _, line_id in codes if line_id is not None}
    assert len(held_by) == 50 and len(set(held_by.values())) == 50  # each code held, by a line of its own
    assert len(allocations) == 50
    assert sorted((code_id, line_id) for code_id, line_id, _ in allocations if code_id) == sorted(held_by.items())
    assert {state for *_, state in allocations} == {"HELD"}
    assert sorted(line_id for line_id, *_ in holders) == sorted(held_by.values())
    assert {number for _, _, number, _ in holders} == placed
    assert {(quantity, status) for _, quantity, _, status in holders} == {(1, OrderStatus.PENDING_PAYMENT)}
    assert await rush.ledger.codes(coins) == {"RESERVED": 50}
    rush.assert_clean_log()


async def test_one_key_sent_50_times_at_once_is_one_order(rush: Rush) -> None:
    coins = await rush.shelf.card_codes(5)
    given = order_input((coins, 1), key=f"same-{uuid.uuid4().hex}")

    async with asyncio.timeout(BUDGET_SECONDS), rush.client() as http:
        started = time.monotonic()
        answers = await asyncio.gather(*(place(http, given) for _ in range(50)))
        elapsed = time.monotonic() - started
    print(f"\n50 concurrent placeOrder with one key: {elapsed:.2f} s")

    assert Counter(outcome(a) for a in answers) == {"PLACED": 50}
    assert len({(a["order"]["number"], a["accessToken"]) for a in answers}) == 1
    async with rush.db.sessions() as session:
        orders = list(await session.scalars(select(Order.number).where(Order.idempotency_key == given["idempotencyKey"])))
    assert orders == [answers[0]["order"]["number"]]
    assert await rush.ledger.codes(coins) == {"AVAILABLE": 4, "RESERVED": 1}
    rush.assert_clean_log()


async def test_20_concurrent_cancels_of_one_order_release_it_once(rush: Rush) -> None:
    coins = await rush.shelf.card_codes(3)
    video = await rush.shelf.counter(10)

    async with asyncio.timeout(BUDGET_SECONDS), rush.client() as http:
        witness = await place(http, order_input((coins, 1), (video, 4), buyer=TOP_UP))
        order = await place(http, order_input((coins, 2), (video, 3), buyer=TOP_UP))
        started = time.monotonic()
        answers = await asyncio.gather(*(
            gql(http, CANCEL, {"id": order["order"]["id"]}, key=order["accessToken"]) for _ in range(20)
        ))
        elapsed = time.monotonic() - started
    print(f"\n20 concurrent cancelOrder of one order: {elapsed:.2f} s")

    assert Counter(",".join(e["code"] for e in a["data"]["cancelOrder"]["userErrors"]) for a in answers) == {
        "": 1, "INVALID_STATE": 19,
    }
    assert {a["data"]["cancelOrder"]["order"]["status"] for a in answers} == {"CANCELLED"}
    assert witness["userErrors"] == []
    assert await rush.ledger.codes(coins) == {"AVAILABLE": 2, "RESERVED": 1}
    assert await rush.ledger.counter(video) == (10, 4)
    assert await rush.ledger.allocations(coins) == Counter({("CODE", "RELEASED"): 2, ("CODE", "HELD"): 1})
    assert await terminal_events(rush.db, order["order"]["number"]) == [OrderStatus.CANCELLED]
    rush.assert_clean_log()


async def test_cancels_racing_expiry_release_each_order_once(tmp_path: Path) -> None:
    async with asyncio.timeout(BUDGET_SECONDS), rush_on(tmp_path, env={"QUANYI_ORDER_TTL_SECONDS": "1"}) as rush:
        coins = await rush.shelf.card_codes(20)
        video = await rush.shelf.counter(20)
        async with rush.client() as http:
            witness = await place(http, order_input((coins, 2), (video, 3), buyer=TOP_UP))
            paid = await gql(http, PAY, {"id": witness["order"]["id"], "reference": "WX-WITNESS"}, key=rush.keys.admin)
            assert paid["data"]["payOrder"]["userErrors"] == []
            orders = [await place(http, order_input((coins, 1), (video, 1), buyer=TOP_UP)) for _ in range(10)]
            expiry = {o["order"]["number"]: await expires_at(rush.db, o["order"]["number"]) for o in orders}
            broker = MemoryBroker()

            async def race(index: int, placed: dict[str, Any]) -> list[str]:
                # Spread over a second around the deadline: early cancels win, late ones find the
                # order expired, and near the deadline cancels, the sweep and this expiry race.
                deadline = expiry[placed["order"]["number"]].timestamp() + (index - 5) * 0.1
                await asyncio.sleep(max(0.0, deadline - time.time()))
                cancels = [gql(http, CANCEL, {"id": placed["order"]["id"]}, key=placed["accessToken"]) for _ in range(20)]
                answers, _ = await asyncio.gather(asyncio.gather(*cancels), expire_once(rush.db, broker))
                return [",".join(e["code"] for e in a["data"]["cancelOrder"]["userErrors"]) for a in answers]

            started = time.monotonic()
            results = await asyncio.gather(*(race(i, o) for i, o in enumerate(orders)))
            elapsed = time.monotonic() - started

        ended: Counter[str] = Counter()
        for placed, cancels in zip(orders, results, strict=True):
            final = await terminal_events(rush.db, placed["order"]["number"])
            ended[final[0].value if len(final) == 1 else "?"] += 1
            assert len(final) == 1, final
            won = Counter(cancels)
            if final == [OrderStatus.CANCELLED]:
                assert won == {"": 1, "INVALID_STATE": 19}, won
            else:
                assert won == {"INVALID_STATE": 20}, won
        print(f"\ncancel vs expiry on 10 orders: {dict(ended)} in {elapsed:.2f} s")
        assert await rush.ledger.codes(coins) == {"AVAILABLE": 18, "RESERVED": 2}
        assert await rush.ledger.counter(video) == (20, 3)
        assert await rush.ledger.allocations(video) == Counter({("COUNTER", "RELEASED"): 10, ("COUNTER", "HELD"): 3})
        assert await rush.ledger.allocations(coins) == Counter({("CODE", "RELEASED"): 10, ("CODE", "HELD"): 2})
        rush.assert_clean_log()


async def expires_at(db: Database, number: str) -> datetime:
    async with db.sessions() as session:
        moment = await session.scalar(select(Order.expires_at).where(Order.number == number))
    assert moment is not None
    return moment


async def terminal_events(db: Database, number: str) -> list[OrderStatus]:
    """The transitions that ended the order's reservation: exactly one, whoever won."""
    async with db.sessions() as session:
        return list(await session.scalars(
            select(OrderEvent.to_status).join(Order, Order.id == OrderEvent.order_id)
            .where(Order.number == number, OrderEvent.to_status.in_((OrderStatus.CANCELLED, OrderStatus.EXPIRED)))
        ))
