"""A gateway on a PostgreSQL primary and a real streaming replica that lags and then stops.

The test makes both clusters of its own (tests/outages.py): a primary with `initdb`, and a
hot standby from `pg_basebackup -R` streaming from it, each on a free port; the machine's
shared PostgreSQL is not touched. The gateway runs with QUANYI_DATABASE_READ_URL naming the
standby and a lag bound of three seconds (the response cache off, so every answer is read).

While the standby keeps up it serves the catalog. With its replay paused, a buyer reads the
order just placed (from the primary), while catalog pages show the standby's stock until it
is three seconds behind, never later, and then the primary's; an operator's change is in the
change's own answer and on the catalog at once. Once replay resumes the standby serves again.
With the standby stopped, every read is answered by the primary.
"""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import select

from config import Settings
from models import Sku
from schema.relay import encode_id
from services.core.database import Database
from services.core.migrate import upgrade
from tests.e2e.server import running_gateway
from tests.e2e.shop import order_input, stock_shop
from tests.outages import ThrowawayPostgres, throwaway_postgres, throwaway_standby
from tests.support import TEST_DATABASE_URL, new_secret_key, without_cost

pytestmark = pytest.mark.e2e

BOUND = 3.0  # QUANYI_READ_MAX_LAG_SECONDS for this gateway
PAGE = """
query Page { products(channel: "web", first: 50) { edges { node { skus { code name stock { available } } } } } }
"""
PRODUCT = """
query Product { product(channel: "web", slug: "netease-one-card") { skus { code name } } }
"""
UPDATE_SKU = """
mutation Update($input: UpdateSkuInput!) {
  updateSku(input: $input) { sku { code name price { amount } } userErrors { code } } }
"""
PLACE = """
mutation Place($input: PlaceOrderInput!) {
  placeOrder(input: $input) { order { id number } accessToken userErrors { code } } }
"""
ORDER = """
query Order($id: ID!) { order(id: $id) { number status lines { quantity sku { code } } } }
"""
READS_ON_REPLICA = re.compile(r'^quanyi_lag_tolerant_reads_total\{served_by="replica"\} ([0-9.e+]+)$', re.M)


async def _gql(http: httpx.AsyncClient, query: str, variables: dict[str, Any] | None = None,
               key: str | None = None) -> dict[str, Any]:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    answer = await http.post("/graphql", json={"query": query, "variables": variables or {}}, headers=headers)
    return without_cost(answer.json())


async def _sku(http: httpx.AsyncClient, code: str, query: str = PAGE) -> dict[str, Any]:
    """A SKU as a catalog page shows it (answered from a plan), or its product's page."""
    answer = await _gql(http, query)
    assert "errors" not in answer, answer
    data = answer["data"]
    products = [edge["node"] for edge in data["products"]["edges"]] if "products" in data else [data["product"]]
    return dict(next(s for p in products for s in p["skus"] if s["code"] == code))


async def _name(http: httpx.AsyncClient, query: str = PAGE) -> str:
    return str((await _sku(http, "NE-15", query))["name"])


async def _replica_status(http: httpx.AsyncClient) -> tuple[str, dict[str, Any]]:
    body = (await http.get("/readyz")).json()
    return body["status"], body.get("replica", {})


async def _until_served_by(http: httpx.AsyncClient, server: str, within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while (replica := (await _replica_status(http))[1]).get("servedBy") != server:
        assert time.monotonic() < deadline, f"reads never went to the {server}: {replica}"
        await asyncio.sleep(0.1)


async def _reads_on_replica(http: httpx.AsyncClient, admin: str) -> float:
    text = (await http.get("/metrics", headers={"authorization": f"Bearer {admin}"})).text
    found = READS_ON_REPLICA.search(text)
    return float(found.group(1)) if found else 0.0


async def _on_standby(standby: ThrowawayPostgres, statement: str) -> None:
    connection = await asyncpg.connect(host="127.0.0.1", port=standby.port, user="postgres", database="postgres")
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


async def test_a_streaming_replica_serves_the_catalog_within_its_bound_and_never_a_callers_own_writes(
    tmp_path: Path,
) -> None:
    if TEST_DATABASE_URL is None:  # collected only in the PostgreSQL run (tests/e2e/conftest.py)
        pytest.fail("set QUANYI_TEST_DATABASE_URL: this test runs PostgreSQL clusters of its own")
    key = new_secret_key()
    async with asyncio.timeout(120), throwaway_postgres() as primary, throwaway_standby(primary) as standby:
        url = primary.url()
        settings = Settings(database_url=url, secret_key=key)
        await asyncio.to_thread(upgrade, url)  # streamed to the standby like any write
        db = Database.connect(settings)
        try:
            keys, shelf = await stock_shop(db, settings)
            coins = await shelf.card_codes(5)
            async with db.fresh_sessions() as session:
                sku = (await session.scalars(select(Sku).where(Sku.code == "NE-15"))).one()
            env = {
                "QUANYI_DATABASE_READ_URL": standby.url(), "QUANYI_READ_MAX_LAG_SECONDS": str(BOUND),
                "QUANYI_RESPONSE_CACHE": "0", "QUANYI_WORKER": "0",
            }
            async with running_gateway(url, key, tmp_path / "gateway.log", env=env) as gateway, \
                    httpx.AsyncClient(base_url=gateway.url, timeout=15) as http:
                # Given the standby has caught up, catalog reads go to it
                await _until_served_by(http, "replica")
                before = await _reads_on_replica(http, keys.admin)
                for _ in range(5):
                    assert await _name(http) == sku.name
                    assert await _name(http, PRODUCT) == sku.name
                assert await _reads_on_replica(http, keys.admin) - before >= 10
                status, replica = await _replica_status(http)
                assert (status, replica["status"], replica["servedBy"], replica["maxLagSeconds"]) == (
                    "ok", "ok", "replica", BOUND)
                assert replica["lagSeconds"] < BOUND  # within a measurement of 0 while it keeps up

                # When the standby stops replaying and a buyer takes one of the 5 codes on sale
                await _on_standby(standby, "SELECT pg_wal_replay_pause()")
                placed = (await _gql(http, PLACE, {"input": order_input((coins, 1))}))["data"]["placeOrder"]
                ordered_at = time.monotonic()
                assert placed["userErrors"] == [], placed
                # Then the buyer reads the order just placed, with its line, from the primary
                assert await _gql(http, ORDER, {"id": placed["order"]["id"]}, key=placed["accessToken"]) == {
                    "data": {"order": {"number": placed["order"]["number"], "status": "PENDING_PAYMENT",
                                       "lines": [{"quantity": 1, "sku": {"code": coins.code}}]}},
                }
                # And catalog pages show the standby's stock until it is BOUND behind, then the primary's
                seen: list[tuple[float, int]] = []
                while not seen or seen[-1][1] != 4:
                    asked_at = time.monotonic()
                    seen.append((asked_at - ordered_at, (await _sku(http, coins.code))["stock"]["available"]))
                    assert asked_at - ordered_at < BOUND + 5, seen
                    await asyncio.sleep(0.1)
                stale = [moment for moment, available in seen if available != 4]
                assert stale and {available for _, available in seen} == {5, 4}, seen  # the standby served reads
                assert max(stale) <= BOUND, seen  # and none staler than the bound
                status, replica = await _replica_status(http)
                assert (status, replica["status"], replica["servedBy"]) == ("degraded", "lagging", "primary")
                assert replica["lagSeconds"] > BOUND

                # When an operator renames a SKU (the standby still paused)
                renamed = "网易一卡通 15 元（改名）"
                change = await _gql(http, UPDATE_SKU, {"input": {
                    "id": encode_id("Sku", sku.id), "version": sku.version, "name": renamed, "basePrice": "16.00",
                }}, key=keys.admin)
                # Then the change is in its own answer, and on the catalog at once: a change heard
                # keeps reads on the primary until the standby is known to hold it
                assert change == {"data": {"updateSku": {
                    "sku": {"code": "NE-15", "name": renamed, "price": {"amount": "16.00"}}, "userErrors": [],
                }}}
                assert await _name(http) == renamed

                # When replay resumes, the standby serves again, with the change
                await _on_standby(standby, "SELECT pg_wal_replay_resume()")
                await _until_served_by(http, "replica")
                before = await _reads_on_replica(http, keys.admin)
                assert await _name(http) == renamed
                assert await _reads_on_replica(http, keys.admin) - before >= 1

                # When the standby stops, every read is answered by the primary
                await asyncio.to_thread(standby.stop)
                for _ in range(10):
                    assert await _name(http) == renamed
                status, replica = await _replica_status(http)
                assert (status, replica["status"], replica["servedBy"]) == ("degraded", "unreachable", "primary")
                log = gateway.output()
                assert "read replica unreachable" in log and "reads go to the primary" in log, log[-3000:]
                assert "Traceback" not in log, log[-3000:]
        finally:
            await db.dispose()
