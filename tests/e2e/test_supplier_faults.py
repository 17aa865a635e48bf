"""Supplier faults against real processes: the gateway and two `quanyi supplier-sim`.

Double callbacks, forged callbacks, answers too late to wait for, and a supplier that refuses
everything: each top-up still ends once, and each supplier hears each request once.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from domain.orders import OrderStatus
from models import Order, Supplier, SupplierAttempt
from schema.relay import encode_id
from services.core.database import Database
from tests.e2e.server import free_port, running_gateway
from tests.e2e.shop import migrated_database
from tests.e2e.supplier_sims import PAY, PLACE, listening, prepare, supplier_sim
from tests.support import new_secret_key

pytestmark = pytest.mark.e2e


async def _buy(url: str, admin: str, sku_id: int, key: str) -> str:
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        placed = (await http.post("/graphql", json={"query": PLACE, "variables": {"input": {
            "channel": "web", "idempotencyKey": f"supplier-faults-{key}", "lines": [{"skuId": encode_id("Sku", sku_id), "quantity": 1}],
            "buyer": {"phone": "13800138000", "rechargeAccount": f"acct-{key}"}}}})).json()["data"]["placeOrder"]
        await http.post("/graphql", json={"query": PAY, "variables": {"id": placed["order"]["id"], "ref": key}},
                        headers={"authorization": f"Bearer {admin}"})
    return str(placed["order"]["id"])


async def _ended(db: Database, key_ref: str, seconds: float = 20) -> tuple[OrderStatus, str, list[tuple[str, str, str]]]:
    """The order paid with `key_ref` once it ended: status, number, its supplier exchanges."""
    deadline = time.monotonic() + seconds
    while True:
        async with db.fresh_sessions() as session:
            order = await session.scalar(select(Order).where(Order.payment_reference == key_ref))
            if order is not None and (order.status in (OrderStatus.DELIVERED, OrderStatus.REFUNDED)
                                      or time.monotonic() > deadline):
                rows = (await session.execute(
                    select(SupplierAttempt.supplier_id, SupplierAttempt.action, SupplierAttempt.outcome)
                    .where(SupplierAttempt.request_id == order.number).order_by(SupplierAttempt.id))).all()
                return order.status, order.number, [tuple(row) for row in rows]  # type: ignore[misc]
        await asyncio.sleep(0.1)


async def _control(url: str, **faults: Any) -> None:
    async with httpx.AsyncClient(base_url=url) as client:
        assert (await client.post("/control", json=faults)).status_code == 200


async def _submission(url: str, request_id: str) -> dict[str, Any] | None:
    async with httpx.AsyncClient(base_url=url) as client:
        rows = (await client.get("/control/submissions")).json()
    return next((row for row in rows if row["request_id"] == request_id), None)


async def _callbacks_sent(url: str, request_id: str, count: int, seconds: float = 10) -> bool:
    """Whether the simulator delivered `count` callbacks of `request_id` within `seconds`."""
    deadline = time.monotonic() + seconds
    while (await _submission(url, request_id) or {}).get("callbacks_sent") != count:
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def test_top_ups_end_once_whatever_the_supplier_does(tmp_path: Path) -> None:
    key = new_secret_key()
    fast_port, backup_port, gateway_port = free_port(), free_port(), free_port()
    common = ("--latency-ms", "20", "--mode", "async", "--seed", "3")
    env = {"QUANYI_WORKER": "1", "QUANYI_WORKER_POLL_SECONDS": "0.2", "QUANYI_PUBLIC_URL": f"http://127.0.0.1:{gateway_port}"}
    with supplier_sim(fast_port, tmp_path / "fast.log", *common) as fast, \
            supplier_sim(backup_port, tmp_path / "backup.log", *common) as backup:
        async with migrated_database(tmp_path) as url:
            await listening(fast)
            await listening(backup)
            db, admin, skus = await prepare(url, key, {"sim-fast": fast, "sim-backup": backup})
            async with db.fresh_sessions() as session:
                ids = {row.id: row.code for row in await session.scalars(select(Supplier))}
            sku = skus["GS-60"]
            try:
                async with running_gateway(url, key, tmp_path / "gateway.log", env=env, port=gateway_port) as gateway:
                    # Every callback twice: the second changes nothing, and is audited as such.
                    await _control(fast, answer_twice=True)
                    await _buy(gateway.url, admin, sku, "twice")
                    _, number, _ = await _ended(db, "twice")
                    assert await _callbacks_sent(fast, number, 2)
                    status, number, attempts = await _ended(db, "twice")
                    assert (status, [(ids[s], a, o) for s, a, o in attempts]) == (OrderStatus.DELIVERED, [
                        ("sim-fast", "SUBMIT", "PENDING"), ("sim-fast", "CALLBACK", "SUCCEEDED"),
                        ("sim-fast", "CALLBACK", "SUCCEEDED"),
                    ])

                    # Forged callbacks are refused; the gateway finds the outcome by asking.
                    await _control(fast, answer_twice=False, bad_signature=True)
                    await _buy(gateway.url, admin, sku, "forged")
                    status, number, attempts = await _ended(db, "forged")
                    assert (status, [(ids[s], a, o) for s, a, o in attempts]) == (
                        OrderStatus.DELIVERED, [("sim-fast", "SUBMIT", "PENDING"), ("sim-fast", "QUERY", "SUCCEEDED")]
                    )

                    # An answer later than the gateway waits (2 s): unknown, so it asks, never resends.
                    await _control(fast, bad_signature=False, mode="sync", answer_after_ms=3000)
                    await _buy(gateway.url, admin, sku, "late")
                    status, number, attempts = await _ended(db, "late")
                    assert (status, [(ids[s], a, o) for s, a, o in attempts]) == (
                        OrderStatus.DELIVERED, [("sim-fast", "SUBMIT", "UNKNOWN"), ("sim-fast", "QUERY", "SUCCEEDED")]
                    )
                    assert ((await _submission(fast, number) or {})["received"], await _submission(backup, number)) == (1, None)

                    # A supplier that refuses everything: the next one is used.
                    await _control(fast, answer_after_ms=0, fail_all=True)
                    await _buy(gateway.url, admin, sku, "refused")
                    status, number, attempts = await _ended(db, "refused")
                    assert (status, [(ids[s], a, o) for s, a, o in attempts]) == (OrderStatus.DELIVERED, [
                        ("sim-fast", "SUBMIT", "FAILED"), ("sim-backup", "SUBMIT", "PENDING"),
                        ("sim-backup", "CALLBACK", "SUCCEEDED"),
                    ])
            finally:
                await db.dispose()
