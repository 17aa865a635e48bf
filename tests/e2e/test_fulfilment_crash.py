"""Fulfilment survives a SIGKILL: every paid order ends DELIVERED or REFUNDED, exactly once.

A real gateway process and two real simulated suppliers (`quanyi supplier-sim`): the first
refuses a share of top-ups (so orders fail over), both answer slowly and call back. 200
orders of every kind are paid, the gateway is killed mid-fulfilment and started again.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from config import Settings
from domain.access import Role
from domain.catalog import CodeStatus
from domain.orders import OrderStatus
from models import Allocation, CardCode, Order, OrderLine, Sku, Supplier
from schema.relay import encode_id
from services.access.keys import issue_key
from services.core.database import Database
from services.core.secret_box import SecretBox
from services.demo.seed import seed_demo
from services.fulfilment.supplier_registry import seal_secret
from tests.e2e.server import PROJECT, free_port, running_gateway
from tests.e2e.shop import migrated_database
from tests.support import new_secret_key

pytestmark = pytest.mark.e2e

SECRET = "crash-test-supplier-secret"
# (SKU, orders): codes, serials, top-ups and bundles (a code plus a top-up).
MIX = [("QB-10", 50), ("SN-1USE", 15), ("GS-60", 60), ("TXV-MONTH", 45), ("PACK-GAMER", 30)]
FINAL = {OrderStatus.DELIVERED, OrderStatus.REFUNDED}
PLACE = """
mutation Place($input: PlaceOrderInput!) { placeOrder(input: $input) { order { id } userErrors { code } } }
"""
PAY = """
mutation Pay($id: ID!, $ref: String!) { payOrder(orderId: $id, paymentReference: $ref) { userErrors { code } } }
"""


@contextlib.contextmanager
def supplier_sim(port: int, log: Path, *args: str) -> Iterator[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("QUANYI_")}
    environment.update(PYTHONUNBUFFERED="1", QUANYI_SUPPLIER_SIM_SECRET=SECRET)
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-c", "from gateway import main; main()", "supplier-sim", "--port", str(port), *args],
            cwd=PROJECT, env=environment, stdout=sink, stderr=subprocess.STDOUT,
        )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


async def _listening(url: str) -> None:
    async with asyncio.timeout(30), httpx.AsyncClient(base_url=url) as client:
        while True:
            with contextlib.suppress(httpx.TransportError):
                if (await client.get("/control")).status_code == 200:
                    return
            await asyncio.sleep(0.1)


async def _prepare(url: str, key: bytes, sims: dict[str, str]) -> tuple[Database, str, dict[str, int]]:
    db = Database.connect(Settings(database_url=url, secret_key=key))
    box = SecretBox(key)
    await seed_demo(db, box)
    async with db.sessions() as session, session.begin():
        admin = await issue_key(session, role=Role.ADMIN, channel=None, name="crash test")
        for code, base_url in sims.items():
            await session.execute(update(Supplier).where(Supplier.code == code).values(
                adapter="http", base_url=base_url, secret_ciphertext=seal_secret(box, code, SECRET), timeout_seconds=2.0))
        skus = {row.code: row.id for row in await session.scalars(select(Sku))}
    return db, admin.plaintext, skus


async def _place_and_pay(url: str, admin: str, skus: dict[str, int]) -> None:
    plan = [code for code, count in MIX for _ in range(count)]
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        async def one(index: int, code: str) -> None:
            placed = (await http.post("/graphql", json={"query": PLACE, "variables": {"input": {
                "channel": "web", "idempotencyKey": f"crash-order-key-{index}",
                "lines": [{"skuId": encode_id("Sku", skus[code]), "quantity": 1}],
                "buyer": {"phone": "13800138000", "rechargeAccount": f"acct-{index}"},
            }}})).json()["data"]["placeOrder"]
            assert placed["userErrors"] == [], (code, placed)
            paid = (await http.post("/graphql", json={"query": PAY, "variables": {"id": placed["order"]["id"],
                    "ref": f"pay-{index}"}}, headers={"authorization": f"Bearer {admin}"})).json()
            assert paid["data"]["payOrder"]["userErrors"] == []

        semaphore = asyncio.Semaphore(16)

        async def bounded(index: int, code: str) -> None:
            async with semaphore:
                await one(index, code)

        await asyncio.gather(*(bounded(i, code) for i, code in enumerate(plan)))


async def _statuses(db: Database) -> Counter[OrderStatus]:
    async with db.fresh_sessions() as session:
        return Counter(await session.scalars(select(Order.status)))


async def _until(db: Database, done: Any, seconds: float) -> Counter[OrderStatus]:
    """The order statuses once `done` holds, or at `seconds` (generous: on a loaded machine
    fulfilment is slow, and the bound only matters when it stalls)."""
    deadline = time.monotonic() + seconds
    while True:
        statuses = await _statuses(db)
        if done(statuses) or time.monotonic() > deadline:
            return statuses
        await asyncio.sleep(0.2)


async def _submissions(url: str) -> dict[str, dict[str, Any]]:
    async with httpx.AsyncClient(base_url=url) as client:
        return {row["request_id"]: row for row in (await client.get("/control/submissions")).json()}


async def test_a_killed_gateway_fulfils_every_paid_order_exactly_once(tmp_path: Path) -> None:
    key = new_secret_key()
    fast_port, backup_port, gateway_port = free_port(), free_port(), free_port()
    common = ("--latency-ms", "150", "--jitter-ms", "50", "--mode", "async", "--seed", "7")
    env = {
        "QUANYI_WORKER": "1", "QUANYI_WORKER_POLL_SECONDS": "0.2", "QUANYI_WORKER_LEASE_SECONDS": "4",
        "QUANYI_WORKER_CONCURRENCY": "6", "QUANYI_PUBLIC_URL": f"http://127.0.0.1:{gateway_port}",
        "QUANYI_EXPIRY_INTERVAL_SECONDS": "3600",
    }
    with supplier_sim(fast_port, tmp_path / "fast.log", *common, "--fail-rate", "0.3") as fast, \
            supplier_sim(backup_port, tmp_path / "backup.log", *common) as backup:
        async with migrated_database(tmp_path) as url:
            await _listening(fast)
            await _listening(backup)
            db, admin, skus = await _prepare(url, key, {"sim-fast": fast, "sim-backup": backup})
            try:
                async with running_gateway(url, key, tmp_path / "gateway-1.log", env=env, port=gateway_port) as first:
                    await _place_and_pay(first.url, admin, skus)
                    before = await _until(db, lambda s: sum(s[x] for x in FINAL) >= 20, 60)
                    first.kill()
                # Killed mid-way: some orders were finished, others were not.
                assert 0 < sum(before[x] for x in FINAL) < 200, before
                async with running_gateway(url, key, tmp_path / "gateway-2.log", env=env, port=gateway_port):
                    after = await _until(db, lambda s: sum(s[x] for x in FINAL) == 200, 120)
                assert set(after) <= FINAL and sum(after.values()) == 200, after
                await _no_code_sold_twice(db)
                await _no_top_up_sent_twice(db, await _submissions(fast), await _submissions(backup))
            finally:
                await db.dispose()


async def _no_code_sold_twice(db: Database) -> None:
    async with db.fresh_sessions() as session:
        sold_codes = (await session.execute(
            select(CardCode.id, CardCode.order_line_id).where(CardCode.status == CodeStatus.SOLD))).all()
        sold_allocations = Counter(await session.scalars(
            select(Allocation.code_id).where(Allocation.state == "SOLD", Allocation.source == "CODE")))
        delivered_code_lines = await session.scalar(
            select(func.count()).select_from(OrderLine).join(Sku, Sku.id == OrderLine.sku_id)
            .where(OrderLine.outcome == "DELIVERED", Sku.code.in_(("QB-10", "PACK-GAMER"))))
    assert all(line is not None for _, line in sold_codes)
    assert sorted(sold_allocations) == sorted(code for code, _ in sold_codes)
    assert set(sold_allocations.values()) == {1}
    assert len(sold_codes) == delivered_code_lines


async def _no_top_up_sent_twice(db: Database, fast: dict[str, dict[str, Any]], backup: dict[str, dict[str, Any]]) -> None:
    # Each supplier received each request once; the backup only what the first refused.
    assert {row["received"] for row in [*fast.values(), *backup.values()]} == {1}
    assert all(fast[request]["status"] == "FAILED" for request in backup if request in fast)
    assert set(backup) <= set(fast)
    async with db.fresh_sessions() as session:
        delivered_top_ups = await session.scalar(
            select(func.count()).select_from(OrderLine).join(Sku, Sku.id == OrderLine.sku_id)
            .where(OrderLine.outcome == "DELIVERED", Sku.code.in_(("GS-60", "TXV-MONTH", "PACK-GAMER"))))
    credited = [r for r in [*fast.values(), *backup.values()] if r["status"] == "SUCCEEDED"]
    assert len(credited) == delivered_top_ups
