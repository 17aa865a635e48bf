"""PostgreSQL crashes and comes back under a gateway in the middle of traffic.

The database is a PostgreSQL cluster of the test's own (`initdb` and `pg_ctl` in a temporary
folder, on a free port: tests/outages.py), stopped with `pg_ctl -m immediate`, as a crash
is; the machine's shared PostgreSQL serves other runs and is never stopped. Buyers place
orders all along. While the database is down the gateway stays alive, `/readyz` answers 503,
and each request fails at once with SERVICE_UNAVAILABLE instead of hanging. When it is back
the gateway's pool recovers by itself and every request succeeds again. Nothing is half
written: every order the database holds is whole (its line, its reserved code), every order
a buyer was told about exists, and a buyer retrying a failed attempt with its idempotency
key gets one order, never two.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from config import Settings
from domain.catalog import CodeStatus
from models import CardCode, Order, OrderLine
from services.core.database import Database
from services.core.migrate import upgrade
from tests.e2e.server import running_gateway
from tests.e2e.shop import order_input, stock_shop
from tests.outages import throwaway_postgres
from tests.support import TEST_DATABASE_URL, new_secret_key, without_cost

pytestmark = pytest.mark.e2e

PLACE = """
mutation Place($input: PlaceOrderInput!) { placeOrder(input: $input) { order { number } userErrors { code } } }
"""
REQUEST_TIMEOUT = 15.0  # longer than any wait inside the gateway: a request this slow hung


async def _place(http: httpx.AsyncClient, coins: Any, key: str) -> str | None:
    """The order's number, or the error code of a failed attempt (no order promised)."""
    answer = await http.post("/graphql", json={"query": PLACE, "variables": {"input": order_input((coins, 1), key=key)}})
    body = without_cost(answer.json())
    if body.get("errors"):
        return "error:" + body["errors"][0]["extensions"]["code"]
    placed = body["data"]["placeOrder"]
    assert placed["userErrors"] == [], placed
    return str(placed["order"]["number"])


async def _ready(http: httpx.AsyncClient) -> tuple[int, dict[str, Any]]:
    answer = await http.get("/readyz")
    body = answer.json()  # what the database and the broker say (other checks are not this test's)
    return answer.status_code, {name: body[name] for name in ("status", "database", "broker") if name in body}


async def test_a_gateway_rides_out_a_postgres_crash_and_writes_nothing_by_halves(tmp_path: Path) -> None:
    if TEST_DATABASE_URL is None:  # collected only in the PostgreSQL run (tests/e2e/conftest.py)
        pytest.fail("set QUANYI_TEST_DATABASE_URL: this test runs a PostgreSQL cluster of its own")
    key = new_secret_key()
    async with asyncio.timeout(120), throwaway_postgres() as cluster:
        url = cluster.url()
        await asyncio.to_thread(upgrade, url)
        db = Database.connect(Settings(database_url=url, secret_key=key))
        try:
            keys, shelf = await stock_shop(db, Settings(database_url=url, secret_key=key))
            coins = await shelf.card_codes(200)
            outcomes: dict[str, str | None] = {}  # idempotency key: order number or error
            async with running_gateway(url, key, tmp_path / "gateway.log", env={"QUANYI_WORKER": "0"}) as gateway, \
                    httpx.AsyncClient(base_url=gateway.url, timeout=REQUEST_TIMEOUT) as http:
                stop = asyncio.Event()

                async def buyer(n: int) -> None:
                    while not stop.is_set():
                        attempt = f"pg-restart-{n}-{uuid.uuid4().hex}"
                        outcomes[attempt] = await _place(http, coins, attempt)  # a timeout fails the test
                        await asyncio.sleep(0.05)

                buyers = [asyncio.create_task(buyer(n)) for n in range(4)]
                try:
                    # Given orders flowing
                    while sum(1 for o in outcomes.values() if o and not o.startswith("error")) < 10:
                        await asyncio.sleep(0.05)

                    # When the database crashes
                    await asyncio.to_thread(cluster.crash)
                    crashed_at = len(outcomes)

                    # Then the gateway is alive but not ready, and requests fail at once, saying why
                    assert (await http.get("/healthz")).status_code == 200
                    assert await _ready(http) == (503, {"status": "unavailable", "database": "unreachable", "broker": "ok"})
                    while len(outcomes) < crashed_at + 8:
                        await asyncio.sleep(0.05)
                    during = list(outcomes.values())[crashed_at + 4:]
                    assert set(during) == {"error:SERVICE_UNAVAILABLE"}, during

                    # When it is back
                    await asyncio.to_thread(cluster.start)
                    deadline = time.monotonic() + 20
                    while (await _ready(http))[0] != 200:
                        assert time.monotonic() < deadline, "not ready again"
                        await asyncio.sleep(0.1)
                    recovered_at = len(outcomes)
                    while len(outcomes) < recovered_at + 20:
                        await asyncio.sleep(0.05)
                finally:
                    stop.set()
                    await asyncio.gather(*buyers)

                # Then once ready, every request succeeds again
                after = list(outcomes.values())[recovered_at + 4:]
                assert not [o for o in after if o is None or o.startswith("error")], after
                # And a buyer retrying each failed attempt with its key gets one order at most
                failed = [attempt for attempt, outcome in outcomes.items() if outcome is None or outcome.startswith("error")]
                assert failed
                for attempt in failed:
                    retried = await _place(http, coins, attempt)
                    assert retried is not None and not retried.startswith("error"), retried
                    outcomes[attempt] = retried
                assert "Traceback" not in gateway.output(), gateway.output()[-3000:]

            # And the database holds exactly the orders buyers were told of, each one whole
            await db.dispose()  # the test's own connections died with the server
            async with db.fresh_sessions() as session:
                numbers = set(await session.scalars(select(Order.number)))
                lines = dict((await session.execute(
                    select(OrderLine.order_id, func.sum(OrderLine.quantity)).group_by(OrderLine.order_id))).all())
                orders = await session.scalar(select(func.count()).select_from(Order))
                reserved = await session.scalar(select(func.count()).select_from(CardCode).where(
                    CardCode.sku_id == coins.pk, CardCode.status == CodeStatus.RESERVED))
            assert numbers == set(outcomes.values())
            assert (len(lines), set(lines.values()), reserved) == (orders, {1}, orders)
        finally:
            await db.dispose()
