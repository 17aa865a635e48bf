"""A supplier's signed callback, end to end: signed with suppliers/signing.py as a supplier
signs it, posted to a real gateway process at /webhooks/supplier/{code}, verified there by
the HTTP adapter with the secret the gateway keeps sealed in its database.

The simulator answers the top-up PENDING and holds its own callback back, so every callback
the gateway sees is one this test wrote: forged ones change nothing, the genuine one decides
the top-up once, and sending it again (or a contradicting one) is kept on the audit trail
without being applied.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from domain.orders import OrderStatus
from models import Order, Refund, Supplier, SupplierAttempt, TopUpTask
from schema.relay import encode_id
from services.core.database import Database
from suppliers import signing, wire
from suppliers.base import Outcome, Result
from tests.e2e.server import free_port, running_gateway
from tests.e2e.shop import migrated_database
from tests.e2e.supplier_sims import PAY, control, listening, prepare, supplier_sim
from tests.support import new_secret_key

pytestmark = pytest.mark.e2e

BUDGET_SECONDS = 60
FAST_SECRET = "fast-supplier-signing-secret"
BACKUP_SECRET = "backup-supplier-signing-secret"
PLACE = """
mutation Place($input: PlaceOrderInput!) { placeOrder(input: $input) { order { id number } userErrors { code } } }
"""
BAD_SIGNATURE = (401, {"error": "BAD_SIGNATURE", "message": "the signature does not verify"})


async def test_a_signed_callback_decides_a_top_up_once_and_a_forged_or_replayed_one_never(tmp_path: Path) -> None:
    key = new_secret_key()
    fast_port, backup_port, gateway_port = free_port(), free_port(), free_port()
    env = {"QUANYI_WORKER": "1", "QUANYI_WORKER_POLL_SECONDS": "0.2", "QUANYI_EXPIRY_INTERVAL_SECONDS": "3600",
           "QUANYI_PUBLIC_URL": f"http://127.0.0.1:{gateway_port}",
           "QUANYI_BROKER_PREFIX": f"quanyi-callbacks-{uuid.uuid4().hex[:8]}:"}
    sim = ("--mode", "async", "--latency-ms", "0")
    with supplier_sim(fast_port, tmp_path / "fast.log", *sim, secret=FAST_SECRET) as fast, \
            supplier_sim(backup_port, tmp_path / "backup.log", *sim, secret=BACKUP_SECRET) as backup:
        async with asyncio.timeout(BUDGET_SECONDS), migrated_database(tmp_path) as url:
            await listening(fast)
            await listening(backup)
            # The simulator's own callback would come in ten minutes: the test sends the callbacks.
            await control(fast, callback_delay_ms=600_000)
            db, admin, skus = await prepare(url, key, {"sim-fast": fast, "sim-backup": backup},
                                            {"sim-fast": FAST_SECRET, "sim-backup": BACKUP_SECRET})
            try:
                async with running_gateway(url, key, tmp_path / "gateway.log", env=env, port=gateway_port) as gateway, \
                        httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:
                    # Given a paid top-up that the first supplier accepted and has not reported on yet
                    number = await _paid_top_up(http, admin, skus["GS-60"])
                    await _until(db, number, lambda task: task.status == "PENDING")
                    succeeded = wire.result_body(Result(Outcome.SUCCEEDED, number, "SIM-R1"))
                    failed = wire.result_body(Result(Outcome.FAILED, number, "SIM-R1", "refused"))
                    now = time.time()
                    tolerance = signing.TOLERANCE_SECONDS

                    # When callbacks arrive that the supplier did not sign as they stand
                    genuine = signing.sign(FAST_SECRET, succeeded, now)
                    timestamp, digest = genuine.split(",")
                    forged = {
                        "unsigned": await _post(http, "sim-fast", succeeded, None),
                        "body changed after signing": await _post(
                            http, "sim-fast", succeeded, signing.sign(FAST_SECRET, failed, now)),
                        "timestamp changed after signing": await _post(
                            http, "sim-fast", succeeded, f"t={int(now) + 1},{digest}"),
                        "replayed after the tolerance": await _post(
                            http, "sim-fast", succeeded, signing.sign(FAST_SECRET, succeeded, now - tolerance - 1)),
                        # (a minute beyond: the gateway reads its clock a moment after `now`)
                        "dated beyond the tolerance": await _post(
                            http, "sim-fast", succeeded, signing.sign(FAST_SECRET, succeeded, now + tolerance + 60)),
                        "signed with another supplier's secret": await _post(
                            http, "sim-fast", succeeded, signing.sign(BACKUP_SECRET, succeeded, now)),
                        "sent to another supplier's address": await _post(http, "sim-backup", succeeded, genuine),
                        "digest of another scheme": await _post(
                            http, "sim-fast", succeeded, f"{timestamp},v0={digest.removeprefix('v1=')}"),
                    }

                    # Then each is refused and nothing happened: no exchange recorded, the top-up still waits
                    assert forged == {reason: BAD_SIGNATURE for reason in forged}
                    assert await _callbacks(db, number) == []
                    assert await _order(db, number) is OrderStatus.FULFILLING
                    assert (await _task(db, number)).status == "PENDING"

                    # When the supplier's genuine callback arrives, and then arrives again
                    first = await _post(http, "sim-fast", succeeded, genuine)
                    await _until(db, number, lambda task: task.status == "SUCCEEDED")
                    delivered = await _until_order(db, number, OrderStatus.DELIVERED)
                    again = await _post(http, "sim-fast", succeeded, genuine)
                    # and a genuine but contradicting one, and one from the supplier not in charge
                    contradicting = await _post(
                        http, "sim-fast", failed, signing.sign(FAST_SECRET, failed, time.time()))
                    other = await _post(http, "sim-backup", failed, signing.sign(BACKUP_SECRET, failed, time.time()))
                    unknown = await _post(http, "sim-nobody", succeeded, genuine)

                    # Then the first decided the top-up; the others are kept on the audit trail, not applied
                    assert first == (200, {"status": "applied", "requestId": number})
                    assert again == contradicting == other == (200, {"status": "ignored", "requestId": number})
                    assert unknown == (404, {"error": "UNKNOWN_SUPPLIER", "message": "no such supplier"})
                    assert delivered == OrderStatus.DELIVERED
                    assert await _callbacks(db, number) == [
                        ("sim-fast", "SUCCEEDED", True), ("sim-fast", "SUCCEEDED", False),
                        ("sim-fast", "FAILED", False), ("sim-backup", "FAILED", False),
                    ]
                    await asyncio.sleep(0.5)  # what a wrongly applied FAILED would have set off
                    assert await _order(db, number) is OrderStatus.DELIVERED
                    assert (await _task(db, number)).status == "SUCCEEDED"
                    assert await _refunds(db, number) == []
                    log = gateway.output()
                    assert "Traceback" not in log, log[-4000:]
                    assert FAST_SECRET not in log and BACKUP_SECRET not in log
            finally:
                await db.dispose()


async def _paid_top_up(http: httpx.AsyncClient, admin: str, sku_id: int) -> str:
    """The number of a top-up order placed on web and paid."""
    placed = (await http.post("/graphql", json={"query": PLACE, "variables": {"input": {
        "channel": "web", "idempotencyKey": "signed-callback-order",
        "lines": [{"skuId": encode_id("Sku", sku_id), "quantity": 1}],
        "buyer": {"phone": "13800138000", "rechargeAccount": "acct-signed"}}}})).json()["data"]["placeOrder"]
    assert placed["userErrors"] == [], placed
    payment = {"id": placed["order"]["id"], "ref": "WX-SIGNED"}
    paid = (await http.post("/graphql", json={"query": PAY, "variables": payment},
                            headers={"authorization": f"Bearer {admin}"})).json()
    assert paid["data"]["payOrder"]["userErrors"] == [], paid
    return str(placed["order"]["number"])


async def _post(http: httpx.AsyncClient, supplier: str, body: bytes, signature: str | None) -> tuple[int, Any]:
    headers = {"content-type": "application/json"}
    if signature is not None:
        headers[signing.HEADER] = signature
    response = await http.post(f"/webhooks/supplier/{supplier}", content=body, headers=headers)
    return response.status_code, response.json()


async def _task(db: Database, number: str) -> TopUpTask:
    async with db.fresh_sessions() as session:
        task = await session.scalar(select(TopUpTask).where(TopUpTask.request_id == number))
    assert task is not None
    return task


async def _until(db: Database, number: str, done: Any, seconds: float = 20) -> TopUpTask:
    deadline = time.monotonic() + seconds
    while True:
        async with db.fresh_sessions() as session:
            task = await session.scalar(select(TopUpTask).where(TopUpTask.request_id == number))
        if task is not None and done(task):
            return task
        assert time.monotonic() < deadline, task and task.status
        await asyncio.sleep(0.05)


async def _order(db: Database, number: str) -> OrderStatus | None:
    async with db.fresh_sessions() as session:
        return await session.scalar(select(Order.status).where(Order.number == number))


async def _until_order(db: Database, number: str, status: OrderStatus, seconds: float = 20) -> OrderStatus | None:
    deadline = time.monotonic() + seconds
    while (found := await _order(db, number)) is not status and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    return found


async def _callbacks(db: Database, number: str) -> list[tuple[str, str, bool]]:
    """The callbacks recorded about the top-up: supplier, outcome, whether it was applied."""
    async with db.fresh_sessions() as session:
        rows = await session.execute(
            select(Supplier.code, SupplierAttempt.outcome, SupplierAttempt.applied)
            .join(Supplier, Supplier.id == SupplierAttempt.supplier_id)
            .where(SupplierAttempt.request_id == number, SupplierAttempt.action == "CALLBACK")
            .order_by(SupplierAttempt.id))
        return [(code, outcome, applied) for code, outcome, applied in rows]


async def _refunds(db: Database, number: str) -> list[int]:
    async with db.fresh_sessions() as session:
        return list(await session.scalars(
            select(Refund.amount_fen).join(Order, Order.id == Refund.order_id).where(Order.number == number)))
