"""A gateway told to stop (SIGTERM) finishes what it is doing, and hands back what it cannot.

One real gateway process (`uvicorn gateway:create_app --factory`, the job worker on, a grace
period of 1.5 s) and one real simulated supplier that answers top-ups 8 s late. While a
top-up job is under way, a buyer's request is half sent and a stock subscriber is connected;
then the process gets SIGTERM. The request completes with its answer, the subscriber's
socket is closed with 1001 ("going away"), the process exits, and the job it could not
finish is back in the queue without a lease: a new gateway delivers the order at once
instead of waiting out the old lease (60 s).
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, update
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from domain.orders import OrderStatus
from models import Job, JobAttempt, Order, Supplier
from schema.relay import encode_id
from services.core.database import Database
from tests.e2e.server import free_port, running_gateway
from tests.e2e.shop import migrated_database
from tests.e2e.supplier_sims import PAY, PLACE, control, listening, prepare, supplier_sim
from tests.support import new_secret_key

pytestmark = pytest.mark.e2e

STOCK = """
subscription Stock($channel: String!, $skuIds: [ID!]) { stockChanged(channel: $channel, skuIds: $skuIds) { available } }
"""
CATALOG = '{"query": "{ channels { code } }"}'


async def _until(found: object, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not await found():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)


async def test_a_gateway_asked_to_stop_completes_requests_closes_sockets_and_gives_back_jobs(tmp_path: Path) -> None:
    key = new_secret_key()
    sim_port, gateway_port = free_port(), free_port()
    env = {
        "QUANYI_WORKER": "1", "QUANYI_WORKER_POLL_SECONDS": "0.2", "QUANYI_WORKER_LEASE_SECONDS": "60",
        "QUANYI_SHUTDOWN_GRACE_SECONDS": "1.5", "QUANYI_PUBLIC_URL": f"http://127.0.0.1:{gateway_port}",
    }
    with supplier_sim(sim_port, tmp_path / "sim.log", "--mode", "sync", "--latency-ms", "0") as sim:
        async with asyncio.timeout(60), migrated_database(tmp_path) as url:
            await listening(sim)
            db, admin, skus = await prepare(url, key, {"sim-fast": sim, "sim-backup": sim})
            try:
                async with db.sessions() as session, session.begin():
                    # Longer than the grace period: the job is still waiting when the signal comes.
                    await session.execute(update(Supplier).values(timeout_seconds=5.0))
                await control(sim, answer_after_ms=8000)
                sku = encode_id("Sku", skus["GS-60"])
                async with running_gateway(url, key, tmp_path / "a.log", env=env, port=gateway_port) as gateway:
                    assert gateway.process is not None
                    ws_url = gateway.url.replace("http://", "ws://") + "/graphql"
                    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as http, \
                            connect(ws_url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
                        # Given a stock subscriber
                        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
                        assert json.loads(await ws.recv()) == {"type": "connection_ack"}
                        await ws.send(json.dumps({"id": "s", "type": "subscribe", "payload": {
                            "query": STOCK, "variables": {"channel": "web", "skuIds": [sku]}}}))
                        # And a paid top-up whose job is waiting for the supplier's answer
                        placed = (await http.post("/graphql", json={"query": PLACE, "variables": {"input": {
                            "channel": "web", "idempotencyKey": "graceful-shutdown-0001", "lines": [{"skuId": sku, "quantity": 1}],
                            "buyer": {"phone": "13800138000", "rechargeAccount": "acct-shutdown"}}}})).json()
                        order_id = placed["data"]["placeOrder"]["order"]["id"]
                        paid = await http.post("/graphql", headers={"authorization": f"Bearer {admin}"}, json={
                            "query": PAY, "variables": {"id": order_id, "ref": "graceful-1"}})
                        assert paid.json()["data"]["payOrder"]["userErrors"] == []
                        await _until(lambda: _job_leased(db))
                        # And a buyer's request half sent
                        sent_half, signalled = asyncio.Event(), asyncio.Event()

                        async def body() -> AsyncIterator[bytes]:
                            yield CATALOG.encode()[:10]
                            sent_half.set()
                            await signalled.wait()
                            await asyncio.sleep(0.3)
                            yield CATALOG.encode()[10:]

                        request = asyncio.create_task(http.post(
                            "/graphql", content=body(),
                            headers={"content-type": "application/json", "content-length": str(len(CATALOG))}))
                        await sent_half.wait()
                        await asyncio.sleep(0.2)

                        # When the process is asked to stop
                        gateway.process.send_signal(signal.SIGTERM)
                        signalled.set()

                        # Then the subscriber's socket closes with 1001
                        with pytest.raises(ConnectionClosed):
                            while True:
                                await asyncio.wait_for(ws.recv(), 10)
                        assert ws.close_code == 1001
                        # And the half-sent request gets its whole answer
                        answer = await request
                        assert (answer.status_code, answer.json()["data"]["channels"][:1]) == (200, [{"code": "web"}])
                    # And the process exits within its grace period (and a little)
                    await asyncio.to_thread(gateway.process.wait, 15)

                # And the job it could not finish is queued again, no worker holding it
                async with db.fresh_sessions() as session:
                    job = await session.scalar(select(Job).where(Job.kind == "fulfil"))
                    assert job is not None
                    assert (job.status, job.lease, job.locked_until) == ("READY", None, None)
                    outcomes = list(await session.scalars(select(JobAttempt.outcome).where(JobAttempt.job_id == job.id)))
                assert outcomes == ["RELEASED"]

                # When another gateway starts, it delivers the order once the unanswered submission
                # may be asked about (its 5 s timeout), not when the old lease would have ended (60 s)
                await control(sim, answer_after_ms=0)
                async with running_gateway(url, key, tmp_path / "b.log", env=env, port=gateway_port):
                    await _until(lambda: _delivered(db))
            finally:
                await db.dispose()


async def _job_leased(db: Database) -> bool:
    async with db.fresh_sessions() as session:
        return await session.scalar(select(Job.id).where(Job.kind == "fulfil", Job.lease.is_not(None))) is not None


async def _delivered(db: Database) -> bool:
    async with db.fresh_sessions() as session:
        return await session.scalar(select(Order.status).where(Order.payment_reference == "graceful-1")) == OrderStatus.DELIVERED
