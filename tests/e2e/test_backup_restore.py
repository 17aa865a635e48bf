"""A backup restored into a fresh database serves the same orders, codes and ledger.

What docs/operations.md tells an operator to do: `pg_dump --format=custom` of the live
database, `pg_restore` into a new one, a gateway started on it with the same
QUANYI_SECRET_KEY. The shop took and delivered orders through a real gateway first; the
gateway on the restored database answers the same orders, reveals the same card secrets,
and holds the same ledger, fen for fen. PostgreSQL run only (the embedded mode's backup is
a copy of its SQLite file).
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
from collections.abc import AsyncIterator, Generator
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from config import Settings
from domain.access import Role
from models import LedgerEntry, Order, Sku
from schema.relay import encode_id
from services.access.keys import issue_key
from services.core.database import Database
from services.core.secret_box import SecretBox
from services.demo.seed import seed_demo
from tests.e2e.server import running_gateway
from tests.e2e.shop import migrated_database
from tests.support import TEST_DATABASE_URL, fresh_database, new_secret_key, without_cost

pytestmark = pytest.mark.e2e

PLACE = """
mutation Place($input: PlaceOrderInput!) { placeOrder(input: $input) { order { id } userErrors { code } } }
"""
PAY = "mutation Pay($id: ID!, $ref: String!) { payOrder(orderId: $id, paymentReference: $ref) { userErrors { code } } }"
ORDERS = """
{ orders(first: 5) { edges { node { number status total { amount }
  lines { quantity codes(reveal: true) { secret } } } } } }
"""


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@contextlib.asynccontextmanager
async def _empty_database(folder: Path) -> AsyncIterator[str]:
    databases = cast(Generator[str, None, None], fresh_database(folder))
    url = await asyncio.to_thread(next, databases)
    try:
        yield url
    finally:
        await asyncio.to_thread(databases.close)


async def _shop(url: str, key: bytes) -> tuple[str, int]:
    db = Database.connect(Settings(database_url=url, secret_key=key))
    try:
        await seed_demo(db, SecretBox(key))
        async with db.sessions() as session, session.begin():
            admin = await issue_key(session, role=Role.ADMIN, channel=None, name="backup test")
            sku = await session.scalar(select(Sku.id).where(Sku.code == "QB-10"))
        assert sku is not None
        return admin.plaintext, sku
    finally:
        await db.dispose()


async def _seen(http: httpx.AsyncClient, url: str, key: bytes, admin: str) -> tuple[Any, dict[str, int]]:
    """What the gateway answers about the orders, and the ledger's balances in its database."""
    answer = without_cost((await http.post("/graphql", json={"query": ORDERS},
                                           headers={"authorization": f"Bearer {admin}"})).json())
    db = Database.connect(Settings(database_url=url, secret_key=key))
    try:
        async with db.fresh_sessions() as session:
            balances = dict((await session.execute(
                select(LedgerEntry.account, func.sum(LedgerEntry.amount_fen)).group_by(LedgerEntry.account))).all())
    finally:
        await db.dispose()
    return answer, {str(account): int(total) for account, total in balances.items()}


async def test_a_dump_restored_into_a_fresh_database_serves_the_same_orders_codes_and_ledger(tmp_path: Path) -> None:
    if TEST_DATABASE_URL is None:  # collected only in the PostgreSQL run (tests/e2e/conftest.py)
        pytest.fail("set QUANYI_TEST_DATABASE_URL")
    key = new_secret_key()
    async with asyncio.timeout(120), migrated_database(tmp_path) as live:
        admin, sku = await _shop(live, key)
        # Given a shop that sold and delivered card codes through a real gateway
        env = {"QUANYI_WORKER": "1", "QUANYI_WORKER_POLL_SECONDS": "0.2"}
        async with running_gateway(live, key, tmp_path / "live.log", env=env) as gateway, \
                httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:
            for n in range(3):
                answer = (await http.post("/graphql", json={"query": PLACE, "variables": {"input": {
                    "channel": "web", "idempotencyKey": f"backup-restore-{n:04d}-000000", "buyer": {"phone": "13800138000"},
                    "lines": [{"skuId": encode_id("Sku", sku), "quantity": n + 1}]}}})).json()
                placed = answer.get("data", {}).get("placeOrder")
                assert placed and placed["userErrors"] == [], answer
                await http.post("/graphql", headers={"authorization": f"Bearer {admin}"}, json={
                    "query": PAY, "variables": {"id": placed["order"]["id"], "ref": f"backup-{n}"}})
            deadline = time.monotonic() + 20
            db = Database.connect(Settings(database_url=live, secret_key=key))
            try:
                while True:
                    async with db.fresh_sessions() as session:
                        statuses = set(await session.scalars(select(Order.status)))
                    if {status.value for status in statuses} == {"DELIVERED"} or time.monotonic() > deadline:
                        break
                    await asyncio.sleep(0.2)
            finally:
                await db.dispose()
            before = await _seen(http, live, key, admin)
        assert [edge["node"]["status"] for edge in before[0]["data"]["orders"]["edges"]] == ["DELIVERED"] * 3
        assert before[1] and sum(before[1].values()) == 0  # every transaction balances

        # When it is dumped, and the dump restored into a new database
        dump = tmp_path / "quanyi.dump"
        await asyncio.to_thread(subprocess.run, ["pg_dump", "--format=custom", "--no-owner", "--file", str(dump),
                                                 _libpq(live)], check=True, capture_output=True, timeout=60)
        async with _empty_database(tmp_path) as restored:
            await asyncio.to_thread(subprocess.run, ["pg_restore", "--no-owner", "--exit-on-error", "--dbname",
                                                     _libpq(restored), str(dump)], check=True, capture_output=True,
                                    timeout=60)

            # Then a gateway on it answers the same orders, the same secrets, and the same ledger
            async with running_gateway(restored, key, tmp_path / "restored.log", env={"QUANYI_WORKER": "0"}) as gateway, \
                    httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:
                after = await _seen(http, restored, key, admin)
        assert after == before
